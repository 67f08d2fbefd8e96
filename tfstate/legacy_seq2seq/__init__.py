"""`tfstate.legacy_seq2seq`: TF1's `tf.contrib.legacy_seq2seq` (rnn_decoder, attention seq2seq, buckets, losses).

Same names, signatures, defaults, maths and variable names as TF1 (so checkpoints of the TF1
translate and chatbot tutorials restore), on any tfstate cell, fused cells and stacks included:

    decoders        rnn_decoder, embedding_rnn_decoder
    attention       attention_decoder, embedding_attention_decoder
    models          basic_rnn_seq2seq, tied_rnn_seq2seq, embedding_rnn_seq2seq,
                    embedding_tied_rnn_seq2seq, embedding_attention_seq2seq, one2many_rnn_seq2seq
    buckets         model_with_buckets
    losses          sequence_loss_by_example, sequence_loss
"""

from tfstate.legacy_seq2seq.attention import attention_decoder, embedding_attention_decoder
from tfstate.legacy_seq2seq.buckets import model_with_buckets
from tfstate.legacy_seq2seq.decoders import embedding_rnn_decoder, rnn_decoder
from tfstate.legacy_seq2seq.losses import sequence_loss, sequence_loss_by_example
from tfstate.legacy_seq2seq.models import (
    basic_rnn_seq2seq,
    embedding_attention_seq2seq,
    embedding_rnn_seq2seq,
    embedding_tied_rnn_seq2seq,
    one2many_rnn_seq2seq,
    tied_rnn_seq2seq,
)

__all__ = [
    "rnn_decoder",
    "embedding_rnn_decoder",
    "attention_decoder",
    "embedding_attention_decoder",
    "basic_rnn_seq2seq",
    "tied_rnn_seq2seq",
    "embedding_rnn_seq2seq",
    "embedding_tied_rnn_seq2seq",
    "embedding_attention_seq2seq",
    "one2many_rnn_seq2seq",
    "model_with_buckets",
    "sequence_loss_by_example",
    "sequence_loss",
]
