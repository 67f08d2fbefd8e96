"""`keyed_dynamic_rnn`: `dynamic_rnn` whose rows are streams named by keys, their states kept in a `KeyedState`."""

from __future__ import annotations

import tensorflow as tf

from tfstate._checks import require_graph_mode
from tfstate._types import DTypeLike, Scope, StateNest, TensorNest
from tfstate.cells import RNNCell
from tfstate.keyed import KeyedLookup, KeyedState
from tfstate.rnn import dynamic_rnn


class KeyedRNN:
    """What `keyed_dynamic_rnn` builds: the unrolled RNN and the keyed table its rows' states live in.

    `sess.run([krnn.outputs, krnn.keep], {x: chunk, keys: ids})` runs a chunk for the streams
    `ids` and keeps their final states; `sess.run(krnn.outputs, ...)` only peeks; feeding
    `krnn.start` (bool per row) starts those rows afresh; `sess.run(krnn.end, {krnn.end_keys: ids})`
    drops streams.

    Attributes:
      outputs, final_state: as `dynamic_rnn` returns them.
      keep: the op that stores the final states under the keys.
      state: the `KeyedState` (table); `lookup`: this RNN's `KeyedLookup` of it.
      keys, start, found, initial_state: the lookup's (see `KeyedLookup`).
      end, end_keys: the table's `end_op` and its keys placeholder.
    """

    def __init__(self, outputs: TensorNest, final_state: StateNest, lookup: KeyedLookup) -> None:
        self.outputs = outputs
        self.final_state = final_state
        self.lookup = lookup
        self.state = lookup.state
        self.keep = lookup.keep(final_state)

    @property
    def keys(self) -> tf.Tensor:
        return self.lookup.keys

    @property
    def start(self) -> tf.Tensor:
        return self.lookup.start

    @property
    def found(self) -> tf.Tensor:
        return self.lookup.found

    @property
    def initial_state(self) -> StateNest:
        return self.lookup.initial_state

    @property
    def end(self) -> tf.Operation:
        return self.state.end_op

    @property
    def end_keys(self) -> tf.Tensor:
        return self.state.end_keys

    def initial_state_for(self, run_batch_size: int | tf.Tensor) -> StateNest:
        """The same streams' initial state for another consumer of these keys (e.g. `tfstate.generate`)."""
        return self.lookup.initial_state_for(run_batch_size)


def keyed_dynamic_rnn(
    cell: RNNCell,
    inputs: TensorNest,
    keys: tf.Tensor,
    capacity: int | None = None,
    start: tf.Tensor | None = None,
    sequence_length: tf.Tensor | None = None,
    time_major: bool = False,
    dtype: DTypeLike | None = None,
    reset_value: StateNest | None = None,
    max_idle: int | None = None,
    state: KeyedState | None = None,
    scope: Scope | None = None,
    name: str = "keyed_state",
    resets: tf.Tensor | None = None,
    state_device: str | None = None,
) -> KeyedRNN:
    """`tfstate.dynamic_rnn` over `inputs` whose row i continues the stream `keys[i]`.

    Each row starts from the state its key holds in a `KeyedState` table (or from the reset value
    for a key never kept, dropped, idle too long, or flagged in `start`); `KeyedRNN.keep` stores
    the final states back. Fused cells run over the whole chunk as in `tfstate.dynamic_rnn`.

    Args:
      cell: an RNN cell (any TF1-protocol cell; fused cells take their whole-chunk path).
      inputs: `[batch, time, depth]` (or `[time, batch, depth]` with `time_major=True`).
      keys: `[batch]` int64 or string tensor (e.g. a placeholder), one stream key per row, no repeats.
      capacity: the most streams the table holds (see `KeyedState`); needed unless `state` is given.
      start: optional `[batch]` bool tensor; True rows start from the reset value.
      sequence_length: optional `[batch]` int lengths; a row shorter than the chunk keeps the
        state of its last valid step.
      dtype: dtype of the state; defaults to the inputs' dtype.
      time_major: whether `inputs` is `[time, batch, depth]`.
      reset_value: see `KeyedState` (only when the table is built here).
      max_idle: see `KeyedState` (only when the table is built here).
      state: an existing `KeyedState` to use (e.g. shared with another graph path).
      scope: variable scope of the unroll (default "rnn", as in TF1).
      name: name scope of a table built here.
      resets: optional bool `[batch, time]` mask (`[time, batch]` with `time_major`): True starts
        that row's new stream at that step, from the reset value (see `tfstate.resets`); the state
        kept under the row's key is that of its last stream.
      state_device: the device of a table built here (see `KeyedState`'s `device`): by default
        beside the RNN's ops, so on the worker under `replica_device_setter`.

    Returns:
      A `KeyedRNN`.
    """
    require_graph_mode("tfstate.keyed_dynamic_rnn")
    first_input = tf.nest.flatten(inputs)[0]
    if not isinstance(first_input, tf.Tensor):  # e.g. NumPy arrays: every part of nested inputs, not only the first
        inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
        first_input = tf.nest.flatten(inputs)[0]
    dtype = tf.as_dtype(dtype or first_input.dtype)
    keys = tf.convert_to_tensor(keys, dtype_hint=tf.int64 if state is None else state.key_dtype)  # ints: int64
    batch_axis = 1 if time_major else 0
    static_batch = first_input.shape[batch_axis] if first_input.shape.rank else None
    static_keys = keys.shape[0] if keys.shape.rank == 1 else None
    if static_batch is not None and static_keys is not None and static_batch != static_keys:
        raise ValueError(
            f"keyed_dynamic_rnn got {static_keys} keys for inputs of {static_batch} rows "
            f"(shape {first_input.shape}); give one key per row."
        )
    if state is None:
        if capacity is None:
            raise ValueError("keyed_dynamic_rnn needs capacity (the most streams to keep) or state (a KeyedState).")
        state = KeyedState(
            cell,
            capacity,
            key_dtype=keys.dtype,
            dtype=dtype,
            name=name,
            reset_value=reset_value,
            max_idle=max_idle,
            device=state_device,
        )
    elif capacity is not None or reset_value is not None or max_idle is not None or state_device is not None:
        raise ValueError(
            "keyed_dynamic_rnn got state and also capacity, reset_value, max_idle or state_device; those belong to "
            f"the KeyedState '{state.name}' already built. Drop them."
        )
    lookup = state.lookup(keys, start=start, batch_size=tf.shape(first_input)[batch_axis])
    with_resets = {} if resets is None else dict(resets=resets, reset_state=lookup.reset_value)
    outputs, final_state = dynamic_rnn(
        cell,
        inputs,
        sequence_length=sequence_length,
        initial_state=lookup.initial_state,
        time_major=time_major,
        scope=scope,
        **with_resets,
    )
    return KeyedRNN(outputs, final_state, lookup)
