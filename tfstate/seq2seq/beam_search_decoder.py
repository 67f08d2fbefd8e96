"""TF1 contrib's `BeamSearchDecoder` (TF 1.15's maths) and `tile_batch`.

Each step keeps the `beam_width` best continuations per batch row:

    log_p = log_probs[:, :, None] + log_softmax(output_layer(cell_output))    # finished beams: only end_token, at 0
    score = log_p / ((5 + length) / 6) ** length_penalty_weight               # length: tokens so far, end_token
                                                                              # not counted in the step it is chosen
            (+ coverage_penalty_weight * sum(log(min(attention so far, 1))) for beams finished before this step)
    best beam_width of (beam, token) per row -> new beams: ids, parent beams, log_probs, cell states gathered
`dynamic_decode` then runs `finalize`, which spells out the final beams with `gather_tree`.
At the start only beam 0 is alive (the others have log-probability -inf), so the first step
expands one hypothesis.
"""

import collections

import numpy as np
import tensorflow as tf

from tfstate._checks import require_graph_mode
from tfstate.seq2seq.attention_wrapper import AttentionWrapperState
from tfstate.seq2seq.basic_decoder import _check_cell, _check_output_layer, _rnn_output_size
from tfstate.seq2seq.beam_search_ops import gather_tree
from tfstate.seq2seq.decoder import Decoder
from tfstate.seq2seq.helper import _embedding_function, _start_and_end_tokens


class BeamSearchDecoderState(
    collections.namedtuple(
        "BeamSearchDecoderState", ("cell_state", "log_probs", "finished", "lengths", "accumulated_attention_probs")
    )
):
    """The beam search's state: the cell's state per beam, each beam's log-probability, finished flag and length
    (int64), and the summed attention (for the coverage penalty; `()` without one)."""


class BeamSearchDecoderOutput(
    collections.namedtuple("BeamSearchDecoderOutput", ("scores", "predicted_ids", "parent_ids"))
):
    """One step's `[batch, beam_width]` scores, chosen ids and the beams they extend (stacked over time by the loop)."""


class FinalBeamSearchDecoderOutput(
    collections.namedtuple("FinalBeamDecoderOutput", ["predicted_ids", "beam_search_decoder_output"])
):
    """What `dynamic_decode` returns for a beam search: `predicted_ids` `[batch, time, beam_width]` (best beam
    first, end_token-padded) and the per-step `BeamSearchDecoderOutput`."""


def _tile_one(tensor, multiplier):
    tensor = tf.convert_to_tensor(tensor, name="t")
    if tensor.shape.rank is None or tensor.shape.rank < 1:
        raise ValueError(f"tile_batch needs tensors of known rank >= 1 (a batch axis first); got shape {tensor.shape}.")
    tiling = [1] * (tensor.shape.rank + 1)
    tiling[1] = multiplier
    tiled = tf.tile(tf.expand_dims(tensor, 1), tiling)
    shape = tf.shape(tensor)
    tiled = tf.reshape(tiled, tf.concat([[shape[0] * multiplier], shape[1:]], 0))
    static_batch = tensor.shape[0] * multiplier if tensor.shape[0] is not None else None
    tiled.set_shape(tf.TensorShape([static_batch]).concatenate(tensor.shape[1:]))
    return tiled


def tile_batch(t, multiplier, name=None):
    """Repeats every batch row `multiplier` times in place: rows `a, b` -> `a, a, ..., b, b, ...` (nests too).

    This is how encoder outputs, final states and lengths are prepared for `beam_width` beams (not `tf.tile`,
    which would repeat the whole batch instead).
    """
    require_graph_mode("tfstate.seq2seq.tile_batch")
    with tf.name_scope(name or "tile_batch"):
        return tf.nest.map_structure(lambda part: _tile_one(part, multiplier), t)


def _length_penalty(lengths, weight):
    """GNMT's `((5 + length) / 6) ** weight` (Wu et al. 2016), or 1 when the weight is statically 0."""
    weight = tf.convert_to_tensor(weight, name="penalty_factor")
    weight.set_shape(())
    if tf.get_static_value(weight) == 0:
        return 1.0
    return (5.0 + tf.cast(lengths, tf.float32)) ** weight / (5.0 + 1.0) ** weight


def _attention_probs(cell_state):
    """The alignments of every `AttentionWrapperState` in the cell state, averaged over mechanisms and wrappers."""
    states = (
        [cell_state]
        if isinstance(cell_state, AttentionWrapperState)
        else [
            part
            for part in (cell_state if isinstance(cell_state, tuple) else ())
            if isinstance(part, AttentionWrapperState)
        ]
    )
    if not states:
        raise ValueError(
            "BeamSearchDecoder(coverage_penalty_weight != 0) needs an attentional cell (an "
            "AttentionWrapper, alone or in a tuple state); set coverage_penalty_weight=0.0."
        )
    probs = [
        tf.reduce_mean(tf.stack(state.alignments, -1), -1) if isinstance(state.alignments, tuple) else state.alignments
        for state in states
    ]
    return probs[0] if len(probs) == 1 else tf.reduce_mean(tf.stack(probs, -1), -1)


def _mask_finished(log_probs, end_token, finished):
    """Finished beams put all their probability on `end_token` (log 0), every other token the dtype's minimum."""
    vocab_size = tf.shape(log_probs)[2]
    dtype = log_probs.dtype
    finished_row = tf.one_hot(end_token, vocab_size, on_value=tf.constant(0.0, dtype), off_value=dtype.min, dtype=dtype)
    return tf.where(finished[:, :, tf.newaxis], finished_row, log_probs)


def _gather_beams(indices, values):
    """`values[b, indices[b, k]]` for `values` shaped `[batch, beam_width, ...]`: what the chosen beams extend."""
    return tf.gather(values, indices, batch_dims=1)


class BeamSearchDecoder(Decoder):
    """Beam search over `cell`'s outputs (TF 1.15's `tf.contrib.seq2seq.BeamSearchDecoder`).

    The cell runs on `batch * beam_width` rows; give it an initial state tiled with `tile_batch` (for an
    `AttentionWrapper`: a mechanism built on `tile_batch(memory, beam_width)` and
    `zero_state(batch * beam_width, dtype).clone(cell_state=tile_batch(encoder_state, beam_width))`).

    Args:
      cell: an RNN cell.
      embedding: a callable `ids -> inputs`, or the `params` of `tf.nn.embedding_lookup`.
      start_tokens: int32 `[batch]`; end_token: int32 scalar.
      initial_state: the cell's initial state, `[batch * beam_width, ...]` per part.
      beam_width: Python int.
      output_layer: optional layer giving the logits, e.g. `tfstate.layers.Dense(vocab_size)`.
      length_penalty_weight: GNMT's length penalty weight (0: none).
      coverage_penalty_weight: GNMT's coverage penalty weight (0: none; needs an attentional cell).
      reorder_tensor_arrays: reorder TensorArrays in the final cell state (an `alignment_history`) by beam.
    """

    def __init__(
        self,
        cell,
        embedding,
        start_tokens,
        end_token,
        initial_state,
        beam_width,
        output_layer=None,
        length_penalty_weight=0.0,
        coverage_penalty_weight=0.0,
        reorder_tensor_arrays=True,
    ):
        _check_cell(cell, "BeamSearchDecoder")
        _check_output_layer(output_layer, "BeamSearchDecoder")
        self._cell = cell
        self._output_layer = output_layer
        self._reorder_tensor_arrays = reorder_tensor_arrays
        self._embedding_fn = _embedding_function(embedding)
        self._start_tokens, self._end_token = _start_and_end_tokens(start_tokens, end_token, "BeamSearchDecoder")
        self._batch_size = tf.size(self._start_tokens)
        self._beam_width = beam_width
        self._length_penalty_weight = length_penalty_weight
        self._coverage_penalty_weight = coverage_penalty_weight
        self._initial_cell_state = tf.nest.map_structure(self._maybe_split_batch_beams, initial_state)
        self._start_tokens = tf.tile(self._start_tokens[:, tf.newaxis], [1, beam_width])
        self._start_inputs = self._embedding_fn(self._start_tokens)
        only_beam_zero = tf.zeros([self._batch_size], tf.int32)
        self._finished = tf.one_hot(only_beam_zero, beam_width, on_value=False, off_value=True, dtype=tf.bool)

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def tracks_own_finished(self):
        """True: beams are reordered every step, so the decoder keeps its own finished flags."""
        return True

    @property
    def output_size(self):
        shape = tf.TensorShape([self._beam_width])
        return BeamSearchDecoderOutput(scores=shape, predicted_ids=shape, parent_ids=shape)

    @property
    def output_dtype(self):
        dtype = tf.nest.flatten(self._initial_cell_state)[0].dtype
        return BeamSearchDecoderOutput(
            scores=tf.nest.map_structure(lambda _: dtype, _rnn_output_size(self._cell, self._output_layer)),
            predicted_ids=tf.int32,
            parent_ids=tf.int32,
        )

    def _static_batch(self):
        return tf.get_static_value(self._batch_size)

    def _split_batch_beams(self, tensor):
        """`[batch * beam_width, ...]` -> `[batch, beam_width, ...]`, with an error naming the shapes if they differ."""
        static_batch = self._static_batch()
        rows = tensor.shape[0]
        if rows is not None and static_batch is not None and rows != static_batch * self._beam_width:
            raise ValueError(
                f"BeamSearchDecoder runs the cell on batch * beam_width = {static_batch} * {self._beam_width} = "
                f"{static_batch * self._beam_width} rows, but a state or output has {rows} (shape {tensor.shape}). "
                "Tile the initial state (and an attention memory) with tile_batch(x, multiplier=beam_width) and "
                "call zero_state(batch_size * beam_width, dtype)."
            )
        shape = tf.shape(tensor)
        split = tf.reshape(tensor, tf.concat([[self._batch_size, self._beam_width], shape[1:]], 0))
        split.set_shape(tf.TensorShape([static_batch, self._beam_width]).concatenate(tensor.shape[1:]))
        return split

    def _merge_batch_beams(self, tensor):
        """`[batch, beam_width, ...]` -> `[batch * beam_width, ...]`."""
        static_batch = self._static_batch()
        merged = tf.reshape(tensor, tf.concat([[self._batch_size * self._beam_width], tf.shape(tensor)[2:]], 0))
        rows = static_batch * self._beam_width if static_batch is not None else None
        merged.set_shape(tf.TensorShape([rows]).concatenate(tensor.shape[2:]))
        return merged

    def _maybe_split_batch_beams(self, part):
        if isinstance(part, tf.TensorArray):
            return part
        _check_known_rank(part)
        return self._split_batch_beams(part) if part.shape.rank >= 1 else part

    def _maybe_merge_batch_beams(self, part):
        if isinstance(part, tf.TensorArray):
            return part
        _check_known_rank(part)
        return self._merge_batch_beams(part) if part.shape.rank >= 2 else part

    def initialize(self, name=None):
        """Returns `(finished, start_inputs, BeamSearchDecoderState)`; only beam 0 of each row is alive."""
        dtype = tf.nest.flatten(self._initial_cell_state)[0].dtype
        log_probs = tf.one_hot(
            tf.zeros([self._batch_size], tf.int32),
            self._beam_width,
            on_value=tf.constant(0.0, dtype),
            off_value=tf.constant(-np.inf, dtype),
            dtype=dtype,
        )
        coverage = _attention_probs(self._initial_cell_state) if self._coverage_penalty_weight != 0.0 else ()
        state = BeamSearchDecoderState(
            cell_state=self._initial_cell_state,
            log_probs=log_probs,
            finished=self._finished,
            lengths=tf.zeros([self._batch_size, self._beam_width], tf.int64),
            accumulated_attention_probs=coverage,
        )
        return self._finished, self._start_inputs, state

    def finalize(self, outputs, final_state, sequence_lengths):
        """Spells out the final beams (`gather_tree`) and reorders TensorArrays in the cell state by beam."""
        max_lengths = tf.cast(tf.reduce_max(final_state.lengths, axis=1), tf.int32)
        predicted_ids = gather_tree(outputs.predicted_ids, outputs.parent_ids, max_lengths, self._end_token)
        if self._reorder_tensor_arrays:
            final_state = final_state._replace(
                cell_state=tf.nest.map_structure(
                    lambda part: self._sort_array_beams(part, outputs.parent_ids, final_state.lengths),
                    final_state.cell_state,
                )
            )
        outputs = FinalBeamSearchDecoderOutput(beam_search_decoder_output=outputs, predicted_ids=predicted_ids)
        return outputs, final_state

    def _sort_array_beams(self, part, parent_ids, lengths):
        """A TensorArray of `[batch * beam_width, ...]` per step, stacked and reordered to follow the final beams.

        TF1's rule, kept as it was: step t of final beam w reads the row of the beam that w's ancestor
        occupied after step t's selection (an `alignment_history` was written before that selection);
        steps past a beam's length keep their own row.
        """
        if not isinstance(part, tf.TensorArray):
            return part
        element_shape = part.element_shape
        if element_shape.rank is None or element_shape.rank < 1:
            return part
        rows = element_shape[0]
        static_batch = self._static_batch()
        if rows is not None and static_batch is not None and rows != static_batch * self._beam_width:
            return part
        return _gather_tree_from_array(part.stack(), parent_ids, lengths)

    def step(self, time, inputs, state, name=None):
        """One beam search step: returns `(BeamSearchDecoderOutput, BeamSearchDecoderState, next_inputs, finished)`."""
        with tf.name_scope(name or "BeamSearchDecoderStep"):
            inputs = tf.nest.map_structure(self._merge_batch_beams, inputs)
            cell_state = tf.nest.map_structure(self._maybe_merge_batch_beams, state.cell_state)
            cell_outputs, next_cell_state = self._cell(inputs, cell_state)
            cell_outputs = tf.nest.map_structure(self._split_batch_beams, cell_outputs)
            next_cell_state = tf.nest.map_structure(self._maybe_split_batch_beams, next_cell_state)
            if self._output_layer is not None:
                cell_outputs = self._output_layer(cell_outputs)
            output, next_state = self._beam_search_step(cell_outputs, next_cell_state, state)
            finished = next_state.finished
            next_inputs = tf.cond(
                tf.reduce_all(finished), lambda: self._start_inputs, lambda: self._embedding_fn(output.predicted_ids)
            )
        return output, next_state, next_inputs, finished

    def _beam_search_step(self, logits, next_cell_state, beam_state):
        """TF 1.15's `_beam_search_step`: scores every (beam, token), keeps the best `beam_width` per row."""
        batch_size, beam_width, end_token = self._batch_size, self._beam_width, self._end_token
        previously_finished = beam_state.finished
        not_finished = tf.logical_not(previously_finished)
        step_log_probs = _mask_finished(tf.nn.log_softmax(logits), end_token, previously_finished)
        total_probs = beam_state.log_probs[:, :, tf.newaxis] + step_log_probs
        vocab_size = tf.compat.dimension_value(logits.shape[-1]) or tf.shape(logits)[-1]
        adds_length = tf.one_hot(
            tf.fill([batch_size, beam_width], end_token),
            vocab_size,
            on_value=np.int64(0),
            off_value=np.int64(1),
            dtype=tf.int64,
        )
        new_lengths = beam_state.lengths[:, :, tf.newaxis] + adds_length * tf.cast(not_finished, tf.int64)[:, :, None]
        accumulated = None
        if self._coverage_penalty_weight != 0.0:
            attention = _attention_probs(next_cell_state) * tf.cast(not_finished, tf.float32)[:, :, tf.newaxis]
            accumulated = beam_state.accumulated_attention_probs + attention
        scores = total_probs / _length_penalty(new_lengths, self._length_penalty_weight)
        if accumulated is not None:
            clipped = tf.minimum(tf.where(tf.equal(accumulated, 0.0), tf.ones_like(accumulated), accumulated), 1.0)
            coverage = tf.reduce_sum(tf.math.log(clipped), 2) * tf.cast(previously_finished, tf.float32)
            scores += (coverage * self._coverage_penalty_weight)[:, :, tf.newaxis]
        next_scores, word_indices = tf.nn.top_k(tf.reshape(scores, [batch_size, -1]), k=beam_width)
        static_batch = self._static_batch()
        next_scores.set_shape([static_batch, beam_width])
        word_indices.set_shape([static_batch, beam_width])
        next_log_probs = tf.gather(tf.reshape(total_probs, [batch_size, -1]), word_indices, batch_dims=1)
        next_log_probs.set_shape([static_batch, beam_width])
        next_word_ids = tf.cast(tf.math.floormod(word_indices, vocab_size), tf.int32, name="next_beam_word_ids")
        next_beam_ids = tf.cast(word_indices // vocab_size, tf.int32, name="next_beam_parent_ids")
        previously_finished = _gather_beams(next_beam_ids, previously_finished)
        next_finished = tf.logical_or(
            previously_finished, tf.equal(next_word_ids, end_token), name="next_beam_finished"
        )
        next_lengths = _gather_beams(next_beam_ids, beam_state.lengths) + tf.cast(
            tf.logical_not(previously_finished), tf.int64
        )
        next_accumulated = _gather_beams(next_beam_ids, accumulated) if accumulated is not None else ()
        next_cell_state = tf.nest.map_structure(
            lambda part: (
                part if isinstance(part, tf.TensorArray) or part.shape.rank < 2 else _gather_beams(next_beam_ids, part)
            ),
            next_cell_state,
        )
        next_state = BeamSearchDecoderState(
            cell_state=next_cell_state,
            log_probs=next_log_probs,
            finished=next_finished,
            lengths=next_lengths,
            accumulated_attention_probs=next_accumulated,
        )
        return BeamSearchDecoderOutput(next_scores, next_word_ids, next_beam_ids), next_state


def _check_known_rank(tensor):
    if tensor.shape.rank is None:
        raise ValueError(f"BeamSearchDecoder needs state tensors of known rank; got {tensor}.")


def _gather_tree_from_array(stacked, parent_ids, lengths):
    """Reorders a stacked `[max_time, batch * beam_width, ...]` array so each step follows the final beams."""
    max_time, batch_size, beam_width = (tf.shape(parent_ids)[i] for i in range(3))
    beam_ids = tf.broadcast_to(tf.range(beam_width), tf.shape(parent_ids))
    max_lengths = tf.cast(tf.reduce_max(lengths, axis=1), tf.int32)
    sorted_beam_ids = gather_tree(beam_ids, parent_ids, max_lengths, end_token=beam_width + 1)
    in_bounds = tf.transpose(tf.sequence_mask(lengths, maxlen=max_time), [2, 0, 1])
    sorted_beam_ids = tf.where(in_bounds, sorted_beam_ids, beam_ids)
    final_shape = tf.shape(stacked)
    by_beam = tf.reshape(stacked, [max_time, batch_size, beam_width, -1])
    ordered = tf.gather(by_beam, sorted_beam_ids, axis=2, batch_dims=2)
    return tf.reshape(ordered, final_shape)
