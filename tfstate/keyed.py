"""KeyedState: the RNN states of many streams in one table keyed by stream id, read and kept per batch row.

One run over a batch whose rows carry stream keys is, in-graph:

    claim the keys                                  # waits for earlier runs still using any of them
    stored = table[keys]                            # whole rows: never half of another run's write
    state[row] = reset_value   if the key holds no state (never kept, ended, dropped by eviction,
                               or not kept in the last `max_idle` keeps) or start[row] is True
                 stored[row]   otherwise
    outputs, final_state = rnn(inputs, state)
    keep: table[keys] = final_state                 # only when the keep op is fetched
          then, if the table holds more than `capacity` streams, drop the least recently kept ones
    release the keys: after the keep's writes, or right after the reads when the run does not keep

So runs that share a key are serialized and lose no update, runs on other keys run in parallel,
and a peek (a run without the keep) changes nothing. Every op is built once.

Storage: a `MutableHashTableOfTensorsV2` maps a key to its row (the state's parts concatenated),
a `MutableHashTableV2` maps it to the table's keep count when it was last kept; both are core
TensorFlow ops, so a SavedModel holding the table loads in TF Serving.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from tensorflow.python.training.saving import saveable_object

from tfstate import _npz
from tfstate._checks import check_structure, require_graph_mode
from tfstate._key_locks import KeyLocks, run_if
from tfstate._types import DTypeLike, StateNest, StateSize, StateValues
from tfstate.cells import RNNCell
from tfstate.state import check_reset_value, only_on, state_paths

_FORMAT = "tfstate-keyed-v1"
_KEY_DTYPES = (tf.int64, tf.string)
_EVICTION_SLACK = 64  # a trim drops capacity // 64 streams more than it must, so that the scan runs rarely
_BUCKETS = 65536
_TABLES = weakref.WeakKeyDictionary()  # graph -> its KeyedStates, in creation order


def saveables(*tables: KeyedState, graph: tf.Graph | None = None) -> list[saveable_object.SaveableObject]:
    """What puts keyed tables into a `tf.compat.v1.train.Saver` checkpoint (opt-in: a plain Saver leaves them out).

        saver = tf.compat.v1.train.Saver(tf.compat.v1.global_variables() + tfstate.keyed.saveables())

    Args:
      *tables: `KeyedState`s (or `KeyedRNN`s); none means every table of `graph` (default: the default graph).

    Returns:
      A list of `SaveableObject`s, one per table: its streams (keys, rows, last keeps) and keep count.
    """
    if not tables:
        tables = _TABLES.get(graph or tf.compat.v1.get_default_graph(), [])
    return [getattr(table, "state", table).saveable for table in tables]


class KeyedState:
    """The states of up to `capacity` streams, one row per stream key, kept between runs.

        table = tfstate.KeyedState(cell, capacity=100000)             # int64 stream keys
        lookup = table.lookup(keys)                                     # keys: [batch] int64
        outputs, final = tfstate.dynamic_rnn(cell, x, initial_state=lookup.initial_state)
        keep = lookup.keep(final)                                       # sess.run([outputs, keep], feed)

    `tfstate.keyed_dynamic_rnn` builds all of this in one call.

    Args:
      cell_or_state_size: a cell (its `state_size` is used) or a `state_size` nest.
      capacity: the most streams the table holds. A keep that leaves more drops the least
        recently kept streams (capacity // 64 more than needed, so the O(capacity) scan that
        finds them runs rarely); a dropped stream starts again from the reset value.
      key_dtype: `tf.int64` or `tf.string`.
      dtype: float dtype of the state.
      name: name scope of the table's ops (made unique in the graph).
      reset_value: what a stream starts from: zeros by default, or a nest of tensors like the
        state, each `[batch, n]` (e.g. computed from the run's features) or broadcastable to it.
      max_idle: None, or an int: a stream not kept in the last `max_idle` keeps of this table
        starts again from the reset value (and is among the first dropped).
      max_parallel_runs: runs that may be in flight at once; more wait for one to finish.
      device: the device of the table and of every op that reads or writes it. By default the
        device the ops built here get, so under `replica_device_setter` (which would put the
        tables, as stateful ops, on a parameter server) the table stays on the worker that runs
        its streams. A parameter server's device makes one table that every worker shares.

    Attributes:
      device: the device of the table and its ops ("" where the placer chooses).
      size: int64 scalar, the streams the table holds.
      end_keys: a `[None]` placeholder of keys for `end_op`.
      ended: `[batch]` bool, True where an `end_keys` key held a state; running it drops those
        states (Triton's END): they start afresh if seen again. `end_op` is its op.
      initializer: empties the table (`tf.compat.v1.local_variables_initializer()` does not).

    Threads: runs that share a key run one after the other (the later one sees the earlier
    one's keep), runs on different keys run in parallel, and a read never sees half of a write
    (see tfstate/_key_locks.py). Two lookups of one table fetched in one run that share a key run
    one after the other too: the second waits for the first's keep, so the first's keep must not
    depend on the second (to continue the same keys, use one lookup's `initial_state_for`).
    """

    def __init__(
        self,
        cell_or_state_size: RNNCell | StateSize,
        capacity: int,
        key_dtype: DTypeLike = tf.int64,
        dtype: DTypeLike = tf.float32,
        name: str = "keyed_state",
        reset_value: StateNest | None = None,
        max_idle: int | None = None,
        max_parallel_runs: int = 8,
        device: str | None = None,
    ) -> None:
        require_graph_mode("tfstate.KeyedState")
        self._state_size = getattr(cell_or_state_size, "state_size", cell_or_state_size)
        self._dtype = tf.as_dtype(dtype)
        self.key_dtype = tf.as_dtype(key_dtype)
        if not self._dtype.is_floating:
            raise ValueError(f"KeyedState '{name}' needs a float dtype; got {self._dtype.name}.")
        if self.key_dtype not in _KEY_DTYPES:
            raise ValueError(
                f"KeyedState '{name}' keys must be int64 or string; got key_dtype {self.key_dtype.name}. "
                "Cast integer keys with tf.cast(keys, tf.int64)."
            )
        for what, value, least in (
            ("capacity", capacity, 1),
            ("max_parallel_runs", max_parallel_runs, 1),
            ("max_idle", 0 if max_idle is None else max_idle, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"KeyedState '{name}' needs {what} an int >= {least}; got {value!r}.")
        self.capacity, self.max_idle = int(capacity), max_idle
        self._paths = state_paths(self._state_size)
        self._widths = [tf.TensorShape(size).as_list() for size in tf.nest.flatten(self._state_size)]
        self._sizes = [int(np.prod(width, dtype=np.int64)) for width in self._widths]
        with tf.compat.v1.name_scope(None, default_name=name) as scope, contextlib.ExitStack() as placement:
            self.name = scope.rstrip("/")
            with contextlib.nullcontext() if device is None else tf.device(device):
                self.device = tf.no_op(name="placement").device  # where an op built here goes
            placement.enter_context(self._on_device())
            self._rows = tf.raw_ops.MutableHashTableOfTensorsV2(
                key_dtype=self.key_dtype,
                value_dtype=self._dtype,
                value_shape=[sum(self._sizes)],
                shared_name=f"{self.name}/rows",
                name="rows",
            )
            self._kept = tf.raw_ops.MutableHashTableV2(
                key_dtype=self.key_dtype, value_dtype=tf.int64, shared_name=f"{self.name}/kept", name="kept"
            )
            # keeps of this table so far; initialized from the table, so that an initializer run after a
            # restore (MonitoredTrainingSession runs local_variables_initializer) keeps it past every stream's
            self._clock = tf.compat.v1.Variable(
                lambda: tf.reduce_max(tf.concat([[0], self._export_kept()[1]], 0)),
                dtype=tf.int64,
                trainable=False,
                use_resource=True,
                name="clock",
                collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES],
            )
            self._locks = KeyLocks(self.name, max_parallel_runs, _BUCKETS)
            self._given_reset_value = check_reset_value(
                self._state_size, reset_value, self._dtype, f"KeyedState '{self.name}'"
            )
            self.size = tf.raw_ops.LookupTableSizeV2(table_handle=self._kept, name="size")
            self.initializer = self.build_initializer()
            self._is_initialized = tf.stack(  # [clock (set by an initializer, a load or a restore), lock bookkeeping]
                [self._clock.is_initialized(), tf.reduce_all([v.is_initialized() for v in self._locks.variables])],
                name="is_initialized",
            )
            self._locks_initializer = tf.compat.v1.variables_initializer(self._locks.variables, "locks_initializer")
            self.end_keys = tf.compat.v1.placeholder(self.key_dtype, [None], name="end_keys")
            self.ended = self.end(self.end_keys)
            self.end_op = self.ended.op
            self._snapshot = self._build_snapshot()
            self._import_keys = tf.compat.v1.placeholder(self.key_dtype, [None], name="import/keys")
            self._import_rows = tf.compat.v1.placeholder(self._dtype, [None, sum(self._sizes)], name="import/rows")
            self._import_kept = tf.compat.v1.placeholder(tf.int64, [None], name="import/kept")
            self._import_clock = tf.compat.v1.placeholder(tf.int64, [], name="import/clock")
            self._import_op = self._build_import(
                self._import_keys, self._import_rows, self._import_kept, self._import_clock
            )
            self.saveable = _TableSaveable(self)
        _TABLES.setdefault(tf.compat.v1.get_default_graph(), []).append(self)

    def _on_device(self):
        return only_on(self.device)

    @property
    def dtype(self) -> tf.DType:
        return self._dtype

    @property
    def state_size(self) -> StateSize:
        return self._state_size

    @property
    def paths(self) -> list[str]:
        """Names of the state's parts in `tf.nest.flatten` order (`c`, `h`, `cell_1/c`, ...)."""
        return list(self._paths)

    def _reset_rows(self, rows):
        """The reset value for `rows` rows, packed into table rows `[rows, row width]`."""
        if self._given_reset_value is None:
            return tf.zeros(tf.stack([rows, sum(self._sizes)]), self._dtype)
        return self._pack(
            [
                tf.broadcast_to(value, tf.concat([[rows], width], 0))
                for value, width in zip(self._given_reset_value, self._widths)
            ]
        )

    def _pack(self, flat_parts):
        return tf.concat([tf.reshape(part, [-1, size]) for part, size in zip(flat_parts, self._sizes)], 1)

    def _unpack(self, rows):
        parts = tf.split(rows, self._sizes, axis=1) if len(self._sizes) > 1 else [rows]
        return [tf.reshape(part, [-1] + width) for part, width in zip(parts, self._widths)]

    def _key_checks(self, keys, what):
        """Static checks of a keys tensor, and the in-graph check that no key appears twice."""
        keys = tf.convert_to_tensor(keys, dtype_hint=self.key_dtype)  # a Python list of ints: int64, not int32
        if keys.dtype != self.key_dtype:
            rebuild = f", or build the table with key_dtype={keys.dtype.name}" if keys.dtype in _KEY_DTYPES else ""
            raise ValueError(
                f"KeyedState '{self.name}' has {self.key_dtype.name} keys; {what} got "
                f"{keys.dtype.name} keys ({keys}). Cast them{rebuild}."
            )
        if keys.shape.rank not in (None, 1):
            raise ValueError(
                f"KeyedState '{self.name}' needs keys of shape [batch] (one per row); {what} got shape {keys.shape}."
            )
        if keys.shape.rank is None:  # checked in-graph: a [batch, 1] or scalar feed is not silently flattened
            rank = tf.debugging.Assert(
                tf.equal(tf.rank(keys), 1),
                [
                    f"KeyedState {self.name} ({what}) needs keys of shape [batch] (one per row); got shape",
                    tf.shape(keys),
                ],
                name="check_keys_rank",
            )
            with tf.control_dependencies([rank]):
                keys = tf.reshape(keys, [-1])
        unique, _, counts = tf.unique_with_counts(keys)
        repeated = tf.boolean_mask(unique, counts > 1)
        check = tf.debugging.Assert(
            tf.equal(tf.size(repeated), 0),
            [
                f"KeyedState {self.name} ({what}): these keys appear more than once in one run:",
                repeated,
                "Each row of a run must be another stream; run the repeats in separate runs.",
            ],
            name="check_unique_keys",
        )
        return keys, check

    def lookup(
        self, keys: tf.Tensor, start: tf.Tensor | None = None, batch_size: int | tf.Tensor | None = None
    ) -> KeyedLookup:
        """The stored states of `keys` for one run, and the keep op that stores its final states.

        Builds ops (call it at graph-building time, once per consumer).

        Args:
          keys: `[batch]` tensor of `key_dtype`, one stream key per row; no key twice in a run.
          start: optional `[batch]` bool tensor: True rows start from the reset value (Triton's
            START). Defaults to a `placeholder_with_default` of all False (`KeyedLookup.start`).
          batch_size: optional scalar int tensor, the batch of the run's inputs: checked in-graph
            to equal the number of keys.

        Returns:
          A `KeyedLookup`.
        """
        require_graph_mode("KeyedState.lookup")
        return KeyedLookup(self, keys, start, batch_size)

    def _read(self, keys, checks):
        """(claimed run, reads done, flat stored rows, kept counts, clock) for `keys` under their claim."""
        run = self._locks.acquire(keys, checks)
        with tf.control_dependencies([run.claimed]):
            rows = tf.raw_ops.LookupTableFindV2(
                table_handle=self._rows, keys=keys, default_value=tf.zeros([sum(self._sizes)], self._dtype)
            )
            kept = tf.raw_ops.LookupTableFindV2(
                table_handle=self._kept, keys=keys, default_value=tf.constant(-1, tf.int64)
            )
            clock = self._clock.read_value()
        reads_done = run.release_after([rows, kept, clock], name="reads_done")
        with tf.control_dependencies([reads_done]):
            rows, kept, clock = tf.identity(rows), tf.identity(kept), tf.identity(clock)
        return run, reads_done, rows, kept, clock

    def _stored(self, kept, clock):
        """True where a key holds a state that has not idled out."""
        stored = kept >= 0
        if self.max_idle is not None:
            stored = tf.logical_and(stored, clock - kept <= self.max_idle)
        return stored

    def _write(self, run, reads_done, keys, rows):
        """An op that stores `rows` under `keys` (after the run's reads), then trims the table to capacity."""
        one_row_per_key = tf.debugging.Assert(  # before the clock counts the keep: a failed keep changes nothing
            tf.equal(tf.shape(rows)[0], tf.size(keys)),
            [f"KeyedState {self.name}: keep got", tf.shape(rows)[0], "state rows for", tf.size(keys), "keys."],
            name="check_kept_rows",
        )
        with tf.control_dependencies([reads_done, one_row_per_key]):
            clock = self._clock.assign_add(1)
            stored = tf.raw_ops.LookupTableInsertV2(table_handle=self._rows, keys=keys, values=rows)
        with tf.control_dependencies([stored]):
            counted = tf.raw_ops.LookupTableInsertV2(
                table_handle=self._kept, keys=keys, values=tf.fill(tf.shape(keys), clock)
            )
        released = run.finish_after([counted])
        with tf.control_dependencies([released]):
            over = tf.raw_ops.LookupTableSizeV2(table_handle=self._kept) > self.capacity
            trimmed = run_if(over, self._trim)
        return tf.group(released, trimmed, name="keep")

    def _trim(self):
        """Drops the least recently kept streams beyond capacity (claiming them first, like a run)."""
        size = tf.raw_ops.LookupTableSizeV2(table_handle=self._kept)
        count = tf.minimum(size - self.capacity + self.capacity // _EVICTION_SLACK, size)
        keys, kept = self._export_kept()
        _, oldest = tf.math.top_k(-kept, k=tf.cast(tf.maximum(count, 0), tf.int32))
        victims, last_kept = tf.gather(keys, oldest), tf.gather(kept, oldest)
        run = self._locks.acquire(victims)
        with tf.control_dependencies([run.claimed]):  # a victim kept again meanwhile stays
            now = tf.raw_ops.LookupTableFindV2(
                table_handle=self._kept, keys=victims, default_value=tf.constant(-1, tf.int64)
            )
            unchanged = tf.ensure_shape(tf.equal(now, last_kept), [None])
            dropped = self._drop(tf.boolean_mask(victims, unchanged))
        return run.finish_after([dropped])

    def _drop(self, keys):
        """Removes `keys` (claimed by the caller); returns a bool per key: whether it held a state."""
        held = (
            tf.raw_ops.LookupTableFindV2(table_handle=self._kept, keys=keys, default_value=tf.constant(-1, tf.int64))
            >= 0
        )
        with tf.control_dependencies([held]):
            uncounted = tf.raw_ops.LookupTableRemoveV2(table_handle=self._kept, keys=keys)
        with tf.control_dependencies([uncounted]):
            removed = tf.raw_ops.LookupTableRemoveV2(table_handle=self._rows, keys=keys)
        with tf.control_dependencies([removed]):
            return tf.identity(held)

    def end(self, keys: tf.Tensor) -> tf.Tensor:
        """A `[batch]` bool tensor, True where the key held a state; running it drops those states.

        The drop waits for runs in flight on those keys (it claims them like a run). Builds ops:
        call it once per keys tensor (the table's own `end_keys` / `ended` are built already).
        """
        require_graph_mode("KeyedState.end")
        with tf.compat.v1.name_scope(f"{self.name}/end/"), self._on_device():
            keys, check = self._key_checks(keys, "end")
            run = self._locks.acquire(keys, [check])
            with tf.control_dependencies([run.claimed]):
                held = self._drop(keys)
            with tf.control_dependencies([run.finish_after([held])]):
                return tf.identity(held, name="ended")

    def _export_kept(self):
        return tf.raw_ops.LookupTableExportV2(table_handle=self._kept, Tkeys=self.key_dtype, Tvalues=tf.int64)

    def build_initializer(self, name: str = "initializer") -> tf.Operation:
        """Builds an op that empties the table; `.initializer` is the one built with the table.

        An export's init op builds its own: an op a session has run must not become a control
        input of a new op (TensorFlow warns that it mutates a run op, and will refuse it).
        """
        with self._on_device():
            empty_keys = tf.zeros([0], self.key_dtype)
            rows = tf.raw_ops.LookupTableImportV2(
                table_handle=self._rows, keys=empty_keys, values=tf.zeros([0, sum(self._sizes)], self._dtype)
            )
            kept = tf.raw_ops.LookupTableImportV2(
                table_handle=self._kept, keys=empty_keys, values=tf.zeros([0], tf.int64)
            )
            with tf.control_dependencies([rows, kept]):
                return tf.group(tf.compat.v1.variables_initializer([self._clock] + self._locks.variables), name=name)

    def initialize_if_needed(self, sess: tf.compat.v1.Session) -> None:
        """Empties the table unless it was initialized, loaded or restored already; then it only readies its locks."""
        clock_set, locks_set = sess.run(self._is_initialized)
        if not clock_set:
            sess.run(self.initializer)
        elif not locks_set:
            sess.run(self._locks_initializer)

    def _build_snapshot(self):
        """(keys, rows, kept counts, clock) of every stored stream, read while no run is in flight."""
        snapshot = []

        def read():
            keys, rows = tf.raw_ops.LookupTableExportV2(
                table_handle=self._rows, Tkeys=self.key_dtype, Tvalues=self._dtype
            )
            kept = tf.raw_ops.LookupTableFindV2(
                table_handle=self._kept, keys=keys, default_value=tf.constant(-1, tf.int64)
            )
            held = tf.ensure_shape(kept >= 0, [None])  # a row without a keep count is not a stream
            snapshot.extend(
                [
                    tf.boolean_mask(keys, held),
                    tf.boolean_mask(rows, held),
                    tf.boolean_mask(kept, held),
                    self._clock.read_value(),
                ]
            )
            return tf.group(snapshot)

        with tf.compat.v1.name_scope("snapshot"):
            done = self._locks.exclusively(read)
            with tf.control_dependencies([done]):
                return [tf.identity(tensor) for tensor in snapshot]

    def _build_import(self, keys, rows, kept, clock):
        """An op that replaces the whole table by the given streams, while no run is in flight."""

        def replace():
            return tf.group(
                tf.raw_ops.LookupTableImportV2(table_handle=self._rows, keys=keys, values=rows),
                tf.raw_ops.LookupTableImportV2(table_handle=self._kept, keys=keys, values=kept),
                self._clock.assign(clock, read_value=False),
            )

        with tf.compat.v1.name_scope("import"):
            return self._locks.exclusively(replace)

    def read(self, sess: tf.compat.v1.Session) -> dict[int | bytes, StateValues]:
        """`{key: nest of arrays}` of every stored stream (read while no run is in flight); string keys as bytes."""
        keys, rows, _, _ = sess.run(self._snapshot)
        parts = self._split(rows)
        return {
            _python_key(key): tf.nest.pack_sequence_as(self._state_size, [part[index] for part in parts])
            for index, key in enumerate(keys)
        }

    def _split(self, rows):
        """Table rows (NumPy) -> flat list of parts, each `[rows] + width`."""
        bounds = np.cumsum([0] + self._sizes)
        return [
            rows[:, start:end].reshape([-1] + width) for start, end, width in zip(bounds[:-1], bounds[1:], self._widths)
        ]

    def _array_names(self):
        names = {path: f"{self.name}/{path}" for path in self._paths}
        return names, f"{self.name}/keys", f"{self.name}/kept", f"{self.name}/clock"

    def save(self, sess: tf.compat.v1.Session, path: str | os.PathLike) -> None:
        """Writes every stored stream to an .npz file, atomically (a crash leaves the old file).

        Arrays are named by the table's name: `<name>/keys` (int64, or for string keys the UTF-8
        bytes as a uint8 array `<name>/keys` with offsets `<name>/key_offsets`), `<name>/<part>`
        rows, `<name>/kept` (the keep count of each stream's last keep) and `<name>/clock`.
        """
        keys, rows, kept, clock = sess.run(self._snapshot)
        parts, key_name, kept_name, clock_name = self._array_names()
        arrays = dict(zip(parts.values(), self._split(rows)))
        arrays.update(_encode_keys(key_name, keys, self.key_dtype))
        arrays[kept_name], arrays[clock_name] = kept, np.asarray(clock, np.int64)
        _npz.write_arrays(path, _FORMAT, arrays)

    def load(self, sess: tf.compat.v1.Session, path: str | os.PathLike) -> None:
        """Replaces the table's streams by those of a `save` file; the file is checked whole first.

        Raises:
          ValueError: the file is unreadable, of another table or model (other names, key dtype
            or part shapes), holds more streams than `capacity`, or is damaged; nothing is changed.
        """
        parts, key_name, kept_name, clock_name = self._array_names()
        expected = {name: [None] + width for name, width in zip(parts.values(), self._widths)}
        expected.update({key_name: [None], kept_name: [None], clock_name: []})
        kinds = {key_name: "i", kept_name: "i", clock_name: "i"}
        if self.key_dtype == tf.string:
            expected[f"{key_name}_offsets"] = [None]
            kinds.update({key_name: "u", f"{key_name}_offsets": "i"})
        arrays = _npz.read_arrays(path, _FORMAT, expected, kinds)
        keys = _decode_keys(arrays, key_name, self.key_dtype, path)
        counts = {len(keys), len(arrays[kept_name])} | {len(arrays[name]) for name in parts.values()}
        if len(counts) != 1:
            raise _npz.StateFileError(
                f"{path}: the arrays of table '{self.name}' hold different numbers of streams "
                f"({sorted(counts)}); the file is damaged."
            )
        if len(keys) > self.capacity:
            raise _npz.StateFileError(
                f"{path} holds {len(keys)} streams; KeyedState '{self.name}' has capacity "
                f"{self.capacity}. Build the table with a larger capacity."
            )
        if len(set(keys.tolist())) != len(keys):
            raise _npz.StateFileError(f"{path}: table '{self.name}' holds a key twice; the file is damaged.")
        clock, kept = int(arrays[clock_name]), arrays[kept_name]
        if ((kept < 0) | (kept > clock)).any():
            raise _npz.StateFileError(
                f"{path}: the keep counts of table '{self.name}' must lie in [0, {clock}] (its clock); got "
                f"{np.array2string(kept[(kept < 0) | (kept > clock)][:4])}. The file is damaged."
            )
        rows = np.concatenate(
            [arrays[name].reshape(len(keys), size) for name, size in zip(parts.values(), self._sizes)], axis=1
        )
        sess.run(
            self._import_op,
            {
                self._import_keys: keys,
                self._import_rows: rows.astype(self._dtype.as_numpy_dtype),
                self._import_kept: arrays[kept_name],
                self._import_clock: arrays[clock_name],
            },
        )

    def check_keys(self, keys: Sequence[int | str | bytes] | np.ndarray) -> np.ndarray:
        """`keys` as a 1-D NumPy array of the table's key dtype; ValueError for any other dtype, shape or a repeat."""
        integers = self.key_dtype == tf.int64
        array = np.asarray(keys)
        if array.size == 0 and array.dtype.kind == "f":  # np.asarray([]) is float64: an empty batch of keys
            array = array.astype(np.int64 if integers else object)
        wanted = "int64 (integers)" if integers else "string (str or bytes)"
        fits = array.dtype.kind in ("iu" if integers else "SUO")
        if array.dtype.kind == "O":
            types = (int, np.integer) if integers else (str, bytes)
            fits = all(isinstance(key, types) and not isinstance(key, bool) for key in array.ravel())
        if not fits:
            raise ValueError(
                f"KeyedState '{self.name}' keys are {wanted}; got {array.dtype} keys "
                f"{np.array2string(array.ravel()[:4], threshold=4)}."
            )
        if array.ndim != 1:
            raise ValueError(f"KeyedState '{self.name}' needs keys of shape [batch]; got shape {list(array.shape)}.")
        as_bytes = [key.encode() if isinstance(key, str) else key for key in array] if array.dtype.kind == "O" else None
        values, counts = np.unique(array if as_bytes is None else np.array(as_bytes, object), return_counts=True)
        if (counts > 1).any():
            repeated = values[counts > 1][0]
            shown = repr(repeated.item() if isinstance(repeated, np.generic) else repeated)
            raise ValueError(
                f"KeyedState '{self.name}': key {shown} appears more than once in one run; each row "
                "must be another stream."
            )
        return array.astype(np.int64) if integers else array


def _python_key(key):
    """A key as Python gives it back: bytes for a string table (as TensorFlow returns them), int otherwise."""
    return bytes(key) if isinstance(key, (bytes, np.bytes_)) else int(key)


def _encode_keys(name, keys, key_dtype):
    """Keys as plain arrays: int64 as they are; strings as their bytes joined, with offsets (no pickle)."""
    if key_dtype == tf.int64:
        return {name: np.asarray(keys, np.int64)}
    encoded = [bytes(key) for key in keys]
    offsets = np.cumsum([0] + [len(key) for key in encoded]).astype(np.int64)
    return {name: np.frombuffer(b"".join(encoded), np.uint8), f"{name}_offsets": offsets}


def _decode_keys(arrays, name, key_dtype, path):
    if key_dtype == tf.int64:
        return arrays[name].astype(np.int64)
    data, offsets = arrays[name].tobytes(), arrays[f"{name}_offsets"]
    if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(data) or (np.diff(offsets) < 0).any():
        raise _npz.StateFileError(
            f"{path}: the key offsets of '{name}' do not fit its {len(data)} bytes; the file is damaged."
        )
    return np.array([data[start:end] for start, end in zip(offsets[:-1], offsets[1:])], dtype=object)


class _TableSaveable(saveable_object.SaveableObject):
    """A table's streams for `tf.compat.v1.train.Saver`: saved and restored while no run is in flight."""

    def __init__(self, table):
        self._table = table
        keys, rows, kept, clock = table._snapshot
        specs = [
            saveable_object.SaveSpec(tensor, "", f"{table.name}/{part}")
            for tensor, part in zip((keys, rows, kept, clock), ("keys", "rows", "kept", "clock"))
        ]
        super().__init__(clock, specs, table.name)

    def restore(self, restored_tensors, restored_shapes):
        table = self._table
        with tf.compat.v1.name_scope(f"{table.name}/restore"), table._on_device():
            keys, rows, kept, clock = restored_tensors
            fits = tf.debugging.Assert(  # as `load` refuses such a file, before anything is replaced
                tf.size(keys) <= table.capacity,
                [
                    f"KeyedState {table.name}: the checkpoint holds",
                    tf.size(keys),
                    f"streams; the table has capacity {table.capacity}. Build it with a larger capacity.",
                ],
                name="check_capacity",
            )
            with tf.control_dependencies([fits]):
                keys = tf.identity(keys)
            return table._build_import(keys, rows, kept, clock)


class KeyedLookup:
    """One consumer's view of a `KeyedState` for a batch of keys (what `KeyedState.lookup` builds).

    Attributes:
      state: the `KeyedState`.
      keys: the `[batch]` keys.
      start: `[batch]` bool; True rows start from the reset value (a `placeholder_with_default` unless given).
      found: `[batch]` bool, True where the run continued a stored state.
      initial_state: the state the run starts from, nested like the table's state.
      reset_value: the state a fresh stream starts from, for these rows (zeros unless the table
        has a `reset_value`).
    """

    def __init__(
        self, state: KeyedState, keys: tf.Tensor, start: tf.Tensor | None, batch_size: int | tf.Tensor | None
    ) -> None:
        self.state = state
        if start is not None:
            start = tf.convert_to_tensor(start)
            if start.dtype != tf.bool:
                raise ValueError(f"KeyedState '{state.name}' start flags must be bool; got {start.dtype.name}.")
        with tf.compat.v1.name_scope(f"{state.name}/lookup/"), state._on_device():
            keys, unique = state._key_checks(keys, "lookup")
            rows = tf.size(keys)
            if start is None:
                start = tf.compat.v1.placeholder_with_default(tf.zeros([rows], tf.bool), [None], name="start")
            self.keys, self.start = keys, start
            checks = [unique, self._check_batch(tf.size(start), "start flags")]
            self._run, self._reads_done, stored, kept, clock = state._read(keys, checks)
            self.found = tf.logical_and(state._stored(kept, clock), tf.logical_not(start), name="found")
            reset = state._reset_rows(rows)
            self.reset_value = tf.nest.pack_sequence_as(state.state_size, state._unpack(reset))
            initial = tf.where(self.found[:, None], stored, reset)
            self._initial = tf.nest.pack_sequence_as(state.state_size, state._unpack(initial))
            # the inputs' batch gates the RNN, not the claim: `initial_state_for` needs no inputs fed
            self.initial_state = self._initial if batch_size is None else self.initial_state_for(batch_size)

    def _check_batch(self, given, what):
        given, expected = tf.cast(given, tf.int32), tf.size(self.keys)
        return tf.debugging.Assert(
            tf.equal(given, expected),
            [f"KeyedState {self.state.name} got", expected, "keys but", given, f"{what}; give one key per row."],
            name="check_batch",
        )

    def initial_state_for(self, run_batch_size: int | tf.Tensor) -> StateNest:
        """`initial_state`, for a consumer whose batch (checked in-graph) must be these keys' (e.g. `generate`).

        Needs only the keys (and start flags) fed, not the inputs of the RNN the lookup was built for.
        """
        with self.state._on_device(), tf.control_dependencies([self._check_batch(run_batch_size, "rows of inputs")]):
            return tf.nest.map_structure(tf.identity, self._initial)

    def keep(self, final_state: StateNest) -> tf.Operation:
        """An op that stores `final_state` (a nest like the state, one row per key) under the keys.

        A run that does not fetch it changes nothing (a peek). After the writes, if the table holds
        more than `capacity` streams, the least recently kept ones are dropped.
        """
        require_graph_mode("KeyedLookup.keep")
        state = self.state
        check_structure(state.state_size, final_state, f"The state kept by KeyedState '{state.name}'")
        values = [tf.convert_to_tensor(value) for value in tf.nest.flatten(final_state)]
        for path, width, value in zip(state._paths, state._widths, values):
            if value.dtype != state.dtype or not value.shape.is_compatible_with([None] + width):
                raise ValueError(
                    f"KeyedState '{state.name}' part '{path}' is {state.dtype.name} "
                    f"[batch, {', '.join(map(str, width))}]; keep got {value.dtype.name} {value.shape}."
                )
        with tf.compat.v1.name_scope(f"{state.name}/keep/"), state._on_device():
            return state._write(self._run, self._reads_done, self.keys, state._pack(values))
