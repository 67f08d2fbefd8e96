"""TF1 contrib's `stack_bidirectional_dynamic_rnn` and `stack_bidirectional_rnn`: bidirectional layers, stacked.

    layer_input = inputs
    for k, (cell_fw, cell_bw) in enumerate(zip(cells_fw, cells_bw)):     # scope stack_bidirectional_rnn/cell_k
        (out_fw, out_bw), (states_fw[k], states_bw[k]) = bidirectional rnn over layer_input
        layer_input = concat([out_fw, out_bw], depth axis)
    return layer_input, tuple(states_fw), tuple(states_bw)

Variable names are TF1's (`stack_bidirectional_rnn/cell_0/bidirectional_rnn/fw/lstm_cell/kernel` for the
dynamic one, `stack_bidirectional_rnn/cell_0/fw/lstm_cell/kernel` for the static one), so TF1
checkpoints restore; they are also the names TF1's `CudnnLSTM(direction="bidirectional")` saves its
weights under, for `CudnnCompatibleLSTMCell` layers.
"""

import tensorflow as tf

from tfstate import _tf1
from tfstate._checks import require_graph_mode
from tfstate.rnn import bidirectional_dynamic_rnn


def _check_layers(function, cells_fw, cells_bw, initial_states_fw, initial_states_bw):
    for name, cells in (("cells_fw", cells_fw), ("cells_bw", cells_bw)):
        if not isinstance(cells, list) or not cells:
            raise ValueError(
                f"{function} needs '{name}' as a non-empty list of RNN cells (one per layer); got {cells!r}."
            )
    if len(cells_fw) != len(cells_bw):
        raise ValueError(
            f"{function} needs as many backward cells as forward cells (one pair per layer); got "
            f"{len(cells_fw)} in 'cells_fw' and {len(cells_bw)} in 'cells_bw'."
        )
    for name, states in (("initial_states_fw", initial_states_fw), ("initial_states_bw", initial_states_bw)):
        if states is not None and (not isinstance(states, list) or len(states) != len(cells_fw)):
            raise ValueError(
                f"{function} needs '{name}' as a list of {len(cells_fw)} states (one per layer) "
                f"or None; got {states!r}."
            )


def _layer_state(states, index):
    return states[index] if states else None


def stack_bidirectional_dynamic_rnn(
    cells_fw,
    cells_bw,
    inputs,
    initial_states_fw=None,
    initial_states_bw=None,
    dtype=None,
    sequence_length=None,
    parallel_iterations=None,
    time_major=False,
    scope=None,
    swap_memory=False,
):
    """TF1's `tf.contrib.rnn.stack_bidirectional_dynamic_rnn`, each layer run by `tfstate.bidirectional_dynamic_rnn`.

    Fused cells therefore run whole chunks in both directions.

    Args:
      cells_fw: list of the forward cells, one per layer.
      cells_bw: list of the backward cells, one per layer.
      inputs: `[batch, time, depth]` (or `[time, batch, depth]` with `time_major=True`).
      initial_states_fw: optional list of the forward cells' initial states, one per layer.
      initial_states_bw: optional list of the backward cells' initial states, one per layer.
      dtype: dtype of the zero states; needed where an initial state is not given.
      sequence_length: optional `[batch]` lengths.
      parallel_iterations: passed on, as in TF1.
      swap_memory: passed on, as in TF1.
      time_major: layout of `inputs` and of the returned outputs.
      scope: variable scope (default "stack_bidirectional_rnn").

    Returns:
      `(outputs, states_fw, states_bw)`: the last layer's outputs, forward and backward concatenated
      along depth; the final forward and backward states, a tuple with one entry per layer.

    Raises:
      ValueError: the cell lists are empty, not lists or of different lengths, or an initial-state
        list does not have one state per layer.
    """
    require_graph_mode("stack_bidirectional_dynamic_rnn")
    _check_layers("stack_bidirectional_dynamic_rnn", cells_fw, cells_bw, initial_states_fw, initial_states_bw)
    layer_input, states_fw, states_bw = inputs, [], []
    with tf.compat.v1.variable_scope(scope or "stack_bidirectional_rnn"):
        for index, (cell_fw, cell_bw) in enumerate(zip(cells_fw, cells_bw)):
            with tf.compat.v1.variable_scope(f"cell_{index}"):
                outputs, (state_fw, state_bw) = bidirectional_dynamic_rnn(
                    cell_fw,
                    cell_bw,
                    layer_input,
                    sequence_length=sequence_length,
                    initial_state_fw=_layer_state(initial_states_fw, index),
                    initial_state_bw=_layer_state(initial_states_bw, index),
                    dtype=dtype,
                    parallel_iterations=parallel_iterations,
                    swap_memory=swap_memory,
                    time_major=time_major,
                )
                layer_input = tf.concat(outputs, 2)
            states_fw.append(state_fw)
            states_bw.append(state_bw)
    return layer_input, tuple(states_fw), tuple(states_bw)


def stack_bidirectional_rnn(
    cells_fw,
    cells_bw,
    inputs,
    initial_states_fw=None,
    initial_states_bw=None,
    dtype=None,
    sequence_length=None,
    scope=None,
):
    """TF1's `tf.contrib.rnn.stack_bidirectional_rnn`: the same stack over a list of per-step inputs.

    Each layer is `tf.compat.v1.nn.static_bidirectional_rnn` in scope `stack_bidirectional_rnn/cell_k`.

    Args:
      inputs: a list of `[batch, depth]` tensors, one per step (the other arguments are those of
        `stack_bidirectional_dynamic_rnn`).

    Returns:
      `(outputs, states_fw, states_bw)`: a list of `[batch, depth_fw + depth_bw]` outputs, one per step,
      and the final states, a tuple with one entry per layer for each direction.

    Raises:
      ValueError: as `stack_bidirectional_dynamic_rnn`.
    """
    require_graph_mode("stack_bidirectional_rnn")
    _check_layers("stack_bidirectional_rnn", cells_fw, cells_bw, initial_states_fw, initial_states_bw)
    layer_input, states_fw, states_bw = inputs, [], []
    with tf.compat.v1.variable_scope(scope or "stack_bidirectional_rnn"):
        for index, (cell_fw, cell_bw) in enumerate(zip(cells_fw, cells_bw)):
            with tf.compat.v1.variable_scope(f"cell_{index}") as cell_scope:
                layer_input, state_fw, state_bw = _tf1.static_bidirectional_rnn(
                    cell_fw,
                    cell_bw,
                    layer_input,
                    initial_state_fw=_layer_state(initial_states_fw, index),
                    initial_state_bw=_layer_state(initial_states_bw, index),
                    dtype=dtype,
                    sequence_length=sequence_length,
                    scope=cell_scope,
                )
            states_fw.append(state_fw)
            states_bw.append(state_bw)
    return layer_input, tuple(states_fw), tuple(states_bw)
