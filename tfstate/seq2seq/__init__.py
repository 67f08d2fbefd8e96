"""`tfstate.seq2seq`: TF1 contrib's `tf.contrib.seq2seq` (helpers, decoders, attention, beam search, losses).

Same names, signatures, maths and variable names as TF 1.15's, so TF1 checkpoints restore:

    cell = AttentionWrapper(LSTMCell(64), BahdanauAttention(64, encoder_outputs, source_lengths),
                            attention_layer_size=64)
    helper = TrainingHelper(embedded_targets, target_lengths)
    decoder = BasicDecoder(cell, helper, cell.zero_state(batch, tf.float32), output_layer=Dense(vocab_size))
    outputs, final_state, lengths = dynamic_decode(decoder)          # outputs.rnn_output: logits
    loss = sequence_loss(outputs.rnn_output, targets, weights)
"""

from tfstate.seq2seq.attention_wrapper import (
    AttentionMechanism,
    AttentionWrapper,
    AttentionWrapperState,
    BahdanauAttention,
    LuongAttention,
    hardmax,
)
from tfstate.seq2seq.basic_decoder import BasicDecoder, BasicDecoderOutput
from tfstate.seq2seq.beam_search_decoder import (
    BeamSearchDecoder,
    BeamSearchDecoderOutput,
    BeamSearchDecoderState,
    FinalBeamSearchDecoderOutput,
    tile_batch,
)
from tfstate.seq2seq.beam_search_ops import gather_tree
from tfstate.seq2seq.decoder import Decoder, dynamic_decode
from tfstate.seq2seq.helper import (
    CustomHelper,
    GreedyEmbeddingHelper,
    Helper,
    InferenceHelper,
    SampleEmbeddingHelper,
    ScheduledEmbeddingTrainingHelper,
    ScheduledOutputTrainingHelper,
    TrainingHelper,
)
from tfstate.seq2seq.loss import sequence_loss
from tfstate.seq2seq.monotonic_attention import (
    BahdanauMonotonicAttention,
    LuongMonotonicAttention,
    monotonic_attention,
    safe_cumprod,
)

__all__ = [
    "sequence_loss",
    "Helper",
    "CustomHelper",
    "TrainingHelper",
    "GreedyEmbeddingHelper",
    "SampleEmbeddingHelper",
    "ScheduledEmbeddingTrainingHelper",
    "ScheduledOutputTrainingHelper",
    "InferenceHelper",
    "Decoder",
    "dynamic_decode",
    "BasicDecoder",
    "BasicDecoderOutput",
    "AttentionMechanism",
    "BahdanauAttention",
    "LuongAttention",
    "AttentionWrapper",
    "AttentionWrapperState",
    "hardmax",
    "BahdanauMonotonicAttention",
    "LuongMonotonicAttention",
    "monotonic_attention",
    "safe_cumprod",
    "BeamSearchDecoder",
    "BeamSearchDecoderOutput",
    "BeamSearchDecoderState",
    "FinalBeamSearchDecoderOutput",
    "tile_batch",
    "gather_tree",
]
