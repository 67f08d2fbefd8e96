"""TF1 contrib's `Decoder` protocol and `dynamic_decode`, the in-graph loop that runs a decoder to the end.

finished, inputs, state = decoder.initialize()
t = 0
while not all(finished) and t < maximum_iterations:             # one tf.while_loop
    outputs[t], state, inputs, step_finished = decoder.step(t, inputs, state)
    lengths[rows not finished before this step] = t + 1
    finished |= step_finished                                   # (a beam search tracks its own)
    t += 1
outputs, state = decoder.finalize(outputs, state, lengths)      # if the decoder defines it
"""

import abc

import tensorflow as tf

from tfstate._checks import require_graph_mode


class Decoder(abc.ABC):
    """An RNN decoder, TF1's interface: what `dynamic_decode` runs.

    `batch_size`, `output_size` (nest of TensorShapes without the batch) and `output_dtype`
    describe one step's outputs; `initialize()` returns `(finished, first_inputs, initial_state)`;
    `step(time, inputs, state)` returns `(outputs, next_state, next_inputs, finished)`;
    `finalize(outputs, final_state, sequence_lengths)` (optional) post-processes the stacked outputs.
    """

    @property
    def batch_size(self):
        raise NotImplementedError(f"{type(self).__name__} must define batch_size.")

    @property
    def output_size(self):
        raise NotImplementedError(f"{type(self).__name__} must define output_size.")

    @property
    def output_dtype(self):
        raise NotImplementedError(f"{type(self).__name__} must define output_dtype.")

    @abc.abstractmethod
    def initialize(self, name=None):
        """Returns `(finished, first_inputs, initial_state)`."""

    @abc.abstractmethod
    def step(self, time, inputs, state, name=None):
        """Returns `(outputs, next_state, next_inputs, finished)`."""

    def finalize(self, outputs, final_state, sequence_lengths):
        """Returns `(final_outputs, final_state)`; decoders without one leave the stacked outputs as they are."""
        raise NotImplementedError

    @property
    def tracks_own_finished(self):
        """True for decoders (beam search) that reorder rows between steps and so keep their own `finished`."""
        return False


def _transpose_batch_time(tensor):
    """Swaps the first two axes of a tensor of rank 2 or more (time major <-> batch major)."""
    rank = tensor.shape.rank
    if rank is not None and rank < 2:
        return tensor
    perm = [1, 0] + list(range(2, rank)) if rank is not None else tf.concat([[1, 0], tf.range(2, tf.rank(tensor))], 0)
    return tf.transpose(tensor, perm)


def _select_rows(condition, when_true, when_false):
    """`tf.where` with `condition` shaped like the leading axes of the values (TF1's row selection)."""
    extra = tf.rank(when_true) - tf.rank(condition)
    condition = tf.reshape(condition, tf.concat([tf.shape(condition), tf.ones([extra], tf.int32)], 0))
    return tf.where(condition, when_true, when_false)


def _zero_outputs(size, dtype, batch_size):
    return tf.nest.map_structure(lambda s, d: tf.zeros([batch_size] + tf.TensorShape(s).as_list(), d), size, dtype)


def dynamic_decode(
    decoder,
    output_time_major=False,
    impute_finished=False,
    maximum_iterations=None,
    parallel_iterations=32,
    swap_memory=False,
    scope=None,
):
    """Runs `decoder` in one `tf.while_loop` until every row is finished (TF 1.15's `dynamic_decode`).

    Args:
      decoder: a `Decoder` (`BasicDecoder`, `BeamSearchDecoder` or your subclass).
      output_time_major: return outputs `[time, batch, ...]` instead of `[batch, time, ...]`.
      impute_finished: zero the outputs of finished rows and carry their state through unchanged.
      maximum_iterations: int32 scalar, the most steps to run (None: until all rows are finished).
      parallel_iterations: passed to `tf.while_loop`.
      swap_memory: passed to `tf.while_loop`.
      scope: variable scope, "decoder" by default (so a cell's variables are `decoder/<cell>/...`).

    Returns:
      `(final_outputs, final_state, final_sequence_lengths)`; a row's length counts the step that finished it.
    """
    require_graph_mode("tfstate.seq2seq.dynamic_decode")
    if not isinstance(decoder, Decoder):
        raise TypeError(
            "dynamic_decode needs a tfstate.seq2seq.Decoder (BasicDecoder, BeamSearchDecoder or a "
            f"subclass of Decoder); got {type(decoder).__name__}."
        )
    with tf.compat.v1.variable_scope(scope, "decoder"):
        if maximum_iterations is not None:
            maximum_iterations = tf.convert_to_tensor(maximum_iterations, tf.int32, name="maximum_iterations")
            if maximum_iterations.shape.rank != 0:
                raise ValueError(
                    f"dynamic_decode needs a scalar maximum_iterations; got shape {maximum_iterations.shape}."
                )
        initial_finished, initial_inputs, initial_state = decoder.initialize()
        if impute_finished:
            zero_outputs = _zero_outputs(decoder.output_size, decoder.output_dtype, decoder.batch_size)
        if maximum_iterations is not None:
            initial_finished = tf.logical_or(initial_finished, maximum_iterations <= 0)
        static_batch = tf.get_static_value(tf.convert_to_tensor(decoder.batch_size))

        def make_array(size, dtype):
            shape = tf.TensorShape(size)
            element_shape = tf.TensorShape([static_batch]).concatenate(shape) if shape.rank else None
            return tf.TensorArray(dtype, size=0, dynamic_size=True, element_shape=element_shape)

        def not_all_finished(time, outputs_ta, state, inputs, finished, lengths):
            return tf.logical_not(tf.reduce_all(finished))

        def body(time, outputs_ta, state, inputs, finished, lengths):
            outputs, next_state, next_inputs, step_finished = decoder.step(time, inputs, state)
            next_finished = step_finished if decoder.tracks_own_finished else tf.logical_or(step_finished, finished)
            next_lengths = tf.where(finished, lengths, tf.fill(tf.shape(lengths), time + 1))
            tf.nest.assert_same_structure(state, next_state)
            tf.nest.assert_same_structure(outputs_ta, outputs)
            tf.nest.assert_same_structure(inputs, next_inputs)
            if impute_finished:
                outputs = tf.nest.map_structure(
                    lambda out, zero: _select_rows(finished, zero, out), outputs, zero_outputs
                )
                next_state = tf.nest.map_structure(
                    lambda new, old: _carry_through(finished, new, old), next_state, state
                )
            outputs_ta = tf.nest.map_structure(lambda ta, out: ta.write(time, out), outputs_ta, outputs)
            return time + 1, outputs_ta, next_state, next_inputs, next_finished, next_lengths

        loop_vars = (
            tf.constant(0, tf.int32),
            tf.nest.map_structure(make_array, decoder.output_size, decoder.output_dtype),
            initial_state,
            initial_inputs,
            initial_finished,
            tf.zeros_like(initial_finished, dtype=tf.int32),
        )
        _, final_outputs_ta, final_state, _, _, final_lengths = tf.compat.v1.while_loop(
            not_all_finished,
            body,
            loop_vars,
            parallel_iterations=parallel_iterations,
            maximum_iterations=maximum_iterations,
            swap_memory=swap_memory,
        )
        final_outputs = tf.nest.map_structure(lambda ta: ta.stack(), final_outputs_ta)
        try:
            final_outputs, final_state = decoder.finalize(final_outputs, final_state, final_lengths)
        except NotImplementedError:
            pass
        if not output_time_major:
            final_outputs = tf.nest.map_structure(_transpose_batch_time, final_outputs)
    return final_outputs, final_state, final_lengths


def _carry_through(finished, new, old):
    """The old value for finished rows; TensorArrays and scalars (such as a step counter) pass as they are."""
    if isinstance(old, tf.TensorArray):
        return new
    new.set_shape(old.shape)
    return new if new.shape.rank == 0 else _select_rows(finished, old, new)
