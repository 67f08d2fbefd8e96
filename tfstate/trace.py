"""Per-timestep states: `dynamic_rnn` returns `h` for every step but `c` only for the last; these return all.

outputs, states, final_state = dynamic_rnn_with_states(cell, inputs)
states[t] (time axis placed like the inputs') == final state of a run over the first t+1 steps
"""

from __future__ import annotations

import tensorflow as tf

from tfstate import _tf1
from tfstate._checks import require_graph_mode
from tfstate._types import DTypeLike, Scope, StateNest, StateSize, TensorNest
from tfstate.cells import CellWrapper, RNNCell


class StateTraceWrapper(CellWrapper):
    """A cell whose output at each step is `(output, new_state)`, so any unroll returns every state.

    Same state and variables as the wrapped cell (no extra scope level: names do not change).
    """

    @property
    def output_size(self) -> tuple[StateSize, StateSize]:
        return (self.cell.output_size, self.cell.state_size)

    def _wrap(self, inputs, state, call):
        output, new_state = call(inputs, state)
        return (output, new_state), new_state


def _repeat_last_valid_state(states, final_state, sequence_length, time_major):
    """Padded steps (t >= sequence_length) get the row's final state, i.e. its last valid one, as TF1 does."""
    time_axis = 0 if time_major else 1
    steps = tf.shape(tf.nest.flatten(states)[0])[time_axis]
    valid = tf.range(steps)[None, :] < tf.cast(sequence_length, tf.int32)[:, None]  # [batch, time]
    if time_major:
        valid = tf.transpose(valid)

    def fill(traced, final):
        return tf.where(valid[:, :, None], traced, tf.expand_dims(final, time_axis))

    return tf.nest.map_structure(fill, states, final_state)


def dynamic_rnn_with_states(
    cell: RNNCell,
    inputs: TensorNest,
    initial_state: StateNest | None = None,
    sequence_length: tf.Tensor | None = None,
    time_major: bool = False,
    dtype: DTypeLike | None = None,
    scope: Scope | None = None,
) -> tuple[TensorNest, StateNest, StateNest]:
    """`tf.compat.v1.nn.dynamic_rnn` that also returns the state of every timestep.

    Returns:
      `(outputs, states, final_state)`: `outputs` and `final_state` as `dynamic_rnn` gives them;
      `states` nests like `cell.state_size` (an `LSTMStateTuple` per LSTM layer, a tensor per GRU,
      a concatenated tensor for `state_is_tuple=False`), each `[batch, time, n]` (or `[time, batch, n]`
      when `time_major`). Steps past a row's `sequence_length` repeat its last valid state.
    """
    require_graph_mode("tfstate.dynamic_rnn_with_states")
    (outputs, states), final_state = _tf1.dynamic_rnn(
        StateTraceWrapper(cell),
        inputs,
        sequence_length=sequence_length,
        initial_state=initial_state,
        dtype=dtype,
        time_major=time_major,
        scope=scope,
    )
    if sequence_length is not None:
        states = _repeat_last_valid_state(states, final_state, sequence_length, time_major)
    return outputs, states, final_state
