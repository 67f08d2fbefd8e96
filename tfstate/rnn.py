"""`dynamic_rnn` / `bidirectional_dynamic_rnn` that take fused cells' whole-chunk path, and `stateful_dynamic_rnn`."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfstate import _tf1
from tfstate._checks import require_graph_mode
from tfstate._types import DTypeLike, Scope, StateNest, TensorNest
from tfstate.cells import RNNCell
from tfstate.fused.gru import unroll_of
from tfstate.resets import stepped_with_resets
from tfstate.state import RNNState


class StatefulRNN:
    """What `stateful_dynamic_rnn` builds: the unrolled RNN and the state it carries.

    `sess.run([rnn.outputs, rnn.keep])` runs a chunk and carries its final state to the next run;
    `sess.run(rnn.outputs)` only peeks; `sess.run(rnn.reset)` resets the state; feeding
    `rnn.step: 0` starts the run from the reset value; feeding `rnn.reset_rows` resets chosen rows.
    """

    def __init__(self, outputs: TensorNest, final_state: StateNest, state: RNNState) -> None:
        self.outputs = outputs
        self.final_state = final_state
        self.state = state
        self.keep = state.keep(final_state)

    @property
    def reset(self) -> tf.Operation:
        return self.state.reset_op

    @property
    def step(self) -> tf.Tensor:
        return self.state.step

    @property
    def reset_rows(self) -> tf.Tensor:
        return self.state.reset_rows

    @property
    def initial_state(self) -> StateNest:
        return self.state.initial_state


def check_stateful_rnns(rnns: StatefulRNN | Sequence[StatefulRNN], who: str) -> tuple[StatefulRNN, ...]:
    """`rnns` (one or a list) as a tuple of distinct `StatefulRNN`s; an error naming what `who` got otherwise."""
    given = tuple(rnns) if isinstance(rnns, (list, tuple)) else (rnns,)
    if not given or not all(isinstance(rnn, StatefulRNN) for rnn in given):
        keyed = any(type(rnn).__name__ == "KeyedRNN" for rnn in given)
        raise TypeError(
            f"{who} takes a StatefulRNN (what tfstate.stateful_dynamic_rnn returns; for an RNNState you unroll "
            f"yourself, StatefulRNN(outputs, final_state, state)) or several; got {_describe(rnns)}."
            + (
                " A KeyedRNN keeps its streams itself: fetch krnn.keep with the run (runs on the same keys are "
                "serialized in-graph)."
                if keyed
                else ""
            )
        )
    names = [rnn.state.name for rnn in given]
    if len(set(names)) != len(names):
        raise ValueError(f"{who} got the same StatefulRNN twice (state names {names}).")
    return given


def _describe(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of {[type(item).__name__ for item in value]}"
    return type(value).__name__


def _dtype_of(inputs):
    """The dtype of (the first of) `inputs`: a tensor's, an array's, or float32 (as TF converts Python numbers)."""
    return tf.as_dtype(getattr(tf.nest.flatten(inputs)[0], "dtype", tf.float32))


def dynamic_rnn(
    cell: RNNCell,
    inputs: TensorNest,
    sequence_length: tf.Tensor | None = None,
    initial_state: StateNest | None = None,
    dtype: DTypeLike | None = None,
    parallel_iterations: int | None = None,
    swap_memory: bool = False,
    time_major: bool = False,
    scope: Scope | None = None,
    resets: tf.Tensor | None = None,
    reset_state: StateNest | None = None,
) -> tuple[TensorNest, StateNest]:
    """`tf.compat.v1.nn.dynamic_rnn` (same arguments, same results) that runs a fused cell over the whole chunk.

    A cell with an `unroll` method (`LSTMBlockCell`, `LSTMBlockFusedCell`, `FusedMultiRNNCell`,
    `GRUBlockCell(V2)`), and a `GRUCell` with its default tanh where the compiled kernel runs it
    (`tfstate.fused.gru.unroll_of`), is unrolled over the whole chunk, inside the same variable
    scope (`scope`, default "rnn"), so variable names and checkpoints are those
    `tf.compat.v1.nn.dynamic_rnn` would give; `parallel_iterations` and `swap_memory` do not apply
    there. Any other cell, or nested inputs, go to `tf.compat.v1.nn.dynamic_rnn` unchanged.
    `tfstate upgrade` rewrites TF1's `dynamic_rnn` to this.

    Two arguments TF1's function lacks (see `tfstate.resets`):

    Args:
      resets: optional bool `[batch, time]` mask (`[time, batch]` with `time_major`); True starts
        that row's new stream at that step, from `reset_state`: packed sequences in one chunk.
      reset_state: what a reset row starts from, nested like the cell's state with `[batch, n]`
        parts; zeros by default.
    """
    require_graph_mode("tfstate.dynamic_rnn")
    unroll = unroll_of(cell, _dtype_of(inputs))
    if resets is None and (unroll is None or tf.nest.is_nested(inputs)):
        return _tf1.dynamic_rnn(
            cell,
            inputs,
            sequence_length=sequence_length,
            initial_state=initial_state,
            dtype=dtype,
            parallel_iterations=parallel_iterations,
            swap_memory=swap_memory,
            time_major=time_major,
            scope=scope,
        )
    inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)  # nested inputs come here with resets only
    batch = tf.shape(tf.nest.flatten(inputs)[0])[1 if time_major else 0]
    if initial_state is None:
        if dtype is None:
            raise ValueError(
                "tfstate.dynamic_rnn needs initial_state or dtype (as tf.compat.v1.nn.dynamic_rnn "
                "does) to build the zero state."
            )
        initial_state = cell.zero_state(batch, dtype)
    if resets is not None:
        if reset_state is None:
            reset_state = cell.zero_state(batch, tf.nest.flatten(initial_state)[0].dtype)
        if unroll is None or tf.nest.is_nested(inputs):
            return stepped_with_resets(
                cell,
                inputs,
                resets,
                reset_state,
                initial_state,
                sequence_length,
                time_major,
                scope,
                parallel_iterations,
                swap_memory,
            )
    with tf.compat.v1.variable_scope(scope or "rnn"):
        if resets is None:
            return unroll(inputs, initial_state, sequence_length=sequence_length, time_major=time_major)
        return unroll(
            inputs,
            initial_state,
            sequence_length=sequence_length,
            time_major=time_major,
            resets=resets,
            reset_state=reset_state,
        )


def bidirectional_dynamic_rnn(
    cell_fw: RNNCell,
    cell_bw: RNNCell,
    inputs: TensorNest,
    sequence_length: tf.Tensor | None = None,
    initial_state_fw: StateNest | None = None,
    initial_state_bw: StateNest | None = None,
    dtype: DTypeLike | None = None,
    parallel_iterations: int | None = None,
    swap_memory: bool = False,
    time_major: bool = False,
    scope: Scope | None = None,
) -> tuple[tuple[TensorNest, TensorNest], tuple[StateNest, StateNest]]:
    """`tf.compat.v1.nn.bidirectional_dynamic_rnn` (same arguments, results and variable names) on `dynamic_rnn`.

    The backward direction runs `dynamic_rnn` over the inputs reversed within each row's length,
    and its outputs are reversed back, as in TF1; fused cells therefore run whole chunks both ways.
    Returns `((output_fw, output_bw), (state_fw, state_bw))`.
    """
    if (
        unroll_of(cell_fw, _dtype_of(inputs)) is None
        or unroll_of(cell_bw, _dtype_of(inputs)) is None
        or tf.nest.is_nested(inputs)
    ):
        return _tf1.bidirectional_dynamic_rnn(
            cell_fw,
            cell_bw,
            inputs,
            sequence_length=sequence_length,
            initial_state_fw=initial_state_fw,
            initial_state_bw=initial_state_bw,
            dtype=dtype,
            parallel_iterations=parallel_iterations,
            swap_memory=swap_memory,
            time_major=time_major,
            scope=scope,
        )
    inputs = tf.convert_to_tensor(inputs)
    time_axis, batch_axis = (0, 1) if time_major else (1, 0)

    def reverse(sequence):
        if sequence_length is None:
            return tf.reverse(sequence, axis=[time_axis])
        return tf.reverse_sequence(
            sequence, tf.cast(sequence_length, tf.int64), seq_axis=time_axis, batch_axis=batch_axis
        )

    with tf.compat.v1.variable_scope(scope or "bidirectional_rnn"):
        with tf.compat.v1.variable_scope("fw") as fw_scope:
            output_fw, state_fw = dynamic_rnn(
                cell_fw, inputs, sequence_length, initial_state_fw, dtype, time_major=time_major, scope=fw_scope
            )
        with tf.compat.v1.variable_scope("bw") as bw_scope:
            output_bw, state_bw = dynamic_rnn(
                cell_bw,
                reverse(inputs),
                sequence_length,
                initial_state_bw,
                dtype,
                time_major=time_major,
                scope=bw_scope,
            )
    return (output_fw, reverse(output_bw)), (state_fw, state_bw)


def stateful_dynamic_rnn(
    cell: RNNCell,
    inputs: TensorNest,
    batch_size: int | None = None,
    sequence_length: tf.Tensor | None = None,
    time_major: bool = False,
    dtype: DTypeLike | None = None,
    reset_value: StateNest | None = None,
    scope: Scope | None = None,
    name: str = "rnn_state",
    state_device: str | None = None,
    resets: tf.Tensor | None = None,
) -> StatefulRNN:
    """`tf.compat.v1.nn.dynamic_rnn` over `inputs`, starting from a state kept in variables.

    Args:
      cell: an RNN cell (tfstate cells, or anything with TF1's cell protocol). A cell with an
        `unroll(inputs, initial_state, sequence_length, time_major)` method (a fused cell) is
        unrolled by that method.
      inputs: `[batch, time, depth]` (or `[time, batch, depth]` with `time_major=True`).
      batch_size: rows of the state; None lets it change at every reset (step 0 or the reset op).
      sequence_length: optional `[batch]` int lengths; a row shorter than the chunk carries the
        state of its last valid step.
      dtype: dtype of the state; defaults to the inputs' dtype.
      reset_value: what a reset starts from (zeros by default); see `RNNState`.
      scope: variable scope of the unroll (default "rnn", as in TF1).
      name: name scope of the state's variables and placeholders.
      state_device: where the state lives; by default beside the RNN's ops (on the worker under
        `replica_device_setter`, never on a parameter server). See `RNNState`, "Placement".
      resets: optional bool `[batch, time]` mask (`[time, batch]` with `time_major`): True starts
        that row's new stream at that step, from `reset_value` (packed sequences; see `tfstate.resets`).

    Returns:
      A `StatefulRNN`.
    """
    require_graph_mode("tfstate.stateful_dynamic_rnn")
    first_input = tf.nest.flatten(inputs)[0]
    if not isinstance(first_input, tf.Tensor):  # e.g. NumPy arrays: every part of nested inputs, not only the first
        inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
        first_input = tf.nest.flatten(inputs)[0]
    dtype = tf.as_dtype(dtype or first_input.dtype)
    batch_axis = 1 if time_major else 0
    static_batch = first_input.shape[batch_axis] if first_input.shape.rank else None
    if batch_size is not None and static_batch is not None and static_batch != batch_size:
        raise ValueError(
            f"stateful_dynamic_rnn state '{name}' has batch size {batch_size}, but the inputs have "
            f"{static_batch} rows (shape {first_input.shape}). Make them agree, or use batch_size=None."
        )
    state = RNNState(
        cell,
        batch_size,
        dtype=dtype,
        name=name,
        reset_value=reset_value,
        run_batch_size=tf.shape(first_input)[batch_axis],
        device=state_device,
    )
    with_resets = {} if resets is None else dict(resets=resets, reset_state=state.reset_value)
    outputs, final_state = dynamic_rnn(
        cell,
        inputs,
        sequence_length=sequence_length,
        initial_state=state.initial_state,
        time_major=time_major,
        scope=scope,
        **with_resets,
    )
    return StatefulRNN(outputs, final_state, state)
