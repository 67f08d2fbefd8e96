"""Resets inside a chunk: a `[batch, time]` mask that starts a row's new stream at a step (packed sequences).

    for t in range(T):
        if resets[row, t]: state[row] = reset_state[row]       # before step t, for the rows it marks
        output[t], state = cell(inputs[t], state)

A reset at a step past a row's `sequence_length` does nothing (the step does not run). Running a
chunk with resets equals running its pieces separately, each from `reset_state` (tests check it
on every path). The fused cells apply the mask in their whole-chunk paths (the compiled kernel,
XLA, the loop; TensorFlow's BlockLSTM has no mask, so `implementation="block"` refuses resets);
any other cell steps through `ResetBeforeStep` under `tf.compat.v1.nn.dynamic_rnn`.
"""

import tensorflow as tf

from tfstate import _tf1
from tfstate.cells import CellWrapper


def time_major_resets(resets, inputs, time_major, who):
    """`resets` as a time-major bool `[time, batch]` tensor, checked against the inputs' batch and time.

    Raises ValueError at build time when the shapes are static and differ; otherwise an in-graph
    assert names both shapes.
    """
    resets = tf.convert_to_tensor(resets)
    if resets.dtype != tf.bool or resets.shape.rank not in (None, 2):
        raise ValueError(
            f"{who}: resets must be a bool [batch, time] mask (True: that row starts a new stream "
            f"at that step); got {resets.dtype.name} of shape {resets.shape}."
        )
    expected = inputs.shape[:2]  # [time, batch] or [batch, time], like the inputs
    layout = "[time, batch]" if time_major else "[batch, time]"
    if resets.shape.rank == 2 and not resets.shape.is_compatible_with(expected):
        raise ValueError(f"{who}: resets must be {layout} like the inputs {expected}; got shape {resets.shape}.")
    check = tf.debugging.Assert(
        tf.reduce_all(tf.equal(tf.shape(resets), tf.shape(inputs)[:2])),
        [
            tf.strings.format(
                f"{who}: resets must be {layout} like the inputs ({{}}); got shape {{}}.",
                (tf.shape(inputs)[:2], tf.shape(resets)),
            )
        ],
    )
    with tf.control_dependencies([check]):
        resets = tf.identity(resets)
    return resets if time_major else tf.transpose(resets)


class ResetBeforeStep(CellWrapper):
    """A cell whose inputs are `(x_t, reset_t)`: rows with `reset_t` start the step from `reset_state`.

    Same state and variables as the wrapped cell (no scope level of its own).
    """

    def __init__(self, cell, reset_state):
        super().__init__(cell)
        self._reset_state = reset_state

    def _wrap(self, inputs, state, call):
        x, reset = inputs
        rows = tf.reshape(reset, [-1, 1])
        state = tf.nest.map_structure(lambda start, value: tf.where(rows, start, value), self._reset_state, state)
        return call(x, state)


def stepped_with_resets(
    cell,
    inputs,
    resets,
    reset_state,
    initial_state,
    sequence_length,
    time_major,
    scope,
    parallel_iterations=None,
    swap_memory=False,
):
    """`tf.compat.v1.nn.dynamic_rnn` over `ResetBeforeStep(cell)`: `(outputs, final_state)` with the resets applied.

    `resets` is laid out like the inputs (`[batch, time]`, or `[time, batch]` with `time_major`).
    """
    first = tf.nest.flatten(inputs)[0]  # nested inputs: dynamic_rnn checks that the others match it
    flags = time_major_resets(resets, first, time_major, "tfstate.dynamic_rnn")
    flags = tf.expand_dims(flags if time_major else tf.transpose(flags), -1)  # dynamic_rnn's inputs are 3-D
    # dynamic_rnn wants every input's static [time, batch] alike; the mask was checked to equal the
    # inputs' in-graph, so each may take what the other's static shape knows
    leading = flags.shape[:2].merge_with(first.shape[:2])

    def aligned(part):
        part = tf.identity(part)
        part.set_shape(leading.concatenate(part.shape[2:]))
        return part

    inputs = tf.nest.map_structure(aligned, inputs)
    flags.set_shape(leading.concatenate([1]))
    return _tf1.dynamic_rnn(
        ResetBeforeStep(cell, reset_state),
        (inputs, flags),
        sequence_length=sequence_length,
        initial_state=initial_state,
        parallel_iterations=parallel_iterations,
        swap_memory=swap_memory,
        time_major=time_major,
        scope=scope or "rnn",
    )
