"""RNNState: an RNN's state kept in variables between `session.run` calls, safe under threads.

One run of a stateful RNN is, in-graph:

    lock the state                                                 # one lock per state per run
    stored = read the variables
    if step == 0:   state = reset_value                            # fresh start (any batch size;
                                                                   # also a batch_size=None state never set)
    else:           state = where(reset_rows, reset_value, stored)  # carry, resetting chosen rows
    outputs, final_state = rnn(inputs, state)
    keep: stored = final_state                                     # only when the keep op is fetched
    unlock: after the keep's writes, or right after the reads when the run does not write

So runs that keep the same state are serialized (no lost update), and a read never sees half of
another run's write (no torn state); runs on different states do not wait for each other.
Every op (keep, reset, assign, read) is built once; running them never grows the graph.
A state's variables and ops are all on the device its RNN runs on (see `RNNState`, "Placement").
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from tfstate._checks import check_structure, require_graph_mode
from tfstate._types import DTypeLike, StateNest, StateSize, StateValues
from tfstate.cells import RNNCell

STATE_VARIABLES = "tfstate_state_variables"
"""Graph collection of every RNNState's variables (also in LOCAL_VARIABLES), with the bookkeeping
variables beside them (the write count, and the row count of a batch_size=None state)."""

_creation_order = itertools.count()


def state_paths(structure: StateSize, prefix: str = "") -> list[str]:
    """Names for the leaves of a state nest, in `tf.nest.flatten` order: `c`, `h`, `cell_1/c`, ..."""
    if hasattr(structure, "_fields"):
        items = zip(structure._fields, structure)
    elif isinstance(structure, (tuple, list)):
        items = ((f"cell_{index}", part) for index, part in enumerate(structure))
    else:
        return [prefix or "state"]
    paths = []
    for key, part in items:
        paths += state_paths(part, f"{prefix}/{key}" if prefix else key)
    return paths


def check_reset_value(
    state_size: StateSize, reset_value: StateNest | None, dtype: DTypeLike, owner: str
) -> list[tf.Tensor] | None:
    """A `reset_value` nest as a flat list of `dtype` tensors (None stays None), each ending in its part's width.

    Raises ValueError naming `owner` (e.g. "RNNState 'rnn_state'"), the part and the shapes.
    """
    if reset_value is None:
        return None
    check_structure(state_size, reset_value, f"The reset_value of {owner}")
    flat = [tf.convert_to_tensor(value, dtype) for value in tf.nest.flatten(reset_value)]
    for path, size, value in zip(state_paths(state_size), tf.nest.flatten(state_size), flat):
        width = _width(size)
        if value.shape.rank is not None and not value.shape[-1:].is_compatible_with(width[-1:]):
            raise ValueError(f"{owner} reset_value for '{path}' must end in {width}; got shape {value.shape}.")
    return flat


def only_on(device: str | None) -> contextlib.ExitStack:
    """A context that builds on `device` alone ("" leaves ops to the placer): outer device functions
    such as `replica_device_setter` do not apply, so a state's storage and every op touching it share a device.
    """
    stack = contextlib.ExitStack()
    stack.enter_context(tf.device(None))
    if device:
        stack.enter_context(tf.device(device))
    return stack


def _width(size):
    return tf.TensorShape(size).as_list()


def _bookkeeping_variable(name):
    return tf.compat.v1.Variable(
        0,
        dtype=tf.int64,
        trainable=False,
        use_resource=True,
        name=name,
        collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES, STATE_VARIABLES],
    )


class RNNState:
    """The state of one RNN, kept in non-trainable resource variables between runs.

    The variables are in LOCAL_VARIABLES, not GLOBAL_VARIABLES, so that re-running
    `global_variables_initializer()` (which TF1 programs do freely) never wipes a state that was
    carried or set; `tfstate.STATE_VARIABLES` collects them too.

    Args:
      cell_or_state_size: a cell (its `state_size` is used) or a `state_size` nest.
      batch_size: rows of the state. An int fixes it; None lets the batch change at step 0 (the
        batch of a run is `run_batch_size`; the reset op keeps the current rows). A None state
        starts with no rows, so its first run starts from `reset_value` as if step were 0.
      dtype: float dtype of the state.
      name: name scope of the variables and placeholders (made unique in the graph).
      reset_value: what a reset starts from: zeros by default, or a nest of tensors like the state,
        each `[batch, n]` or broadcastable to it (e.g. a projection of per-stream features).
      run_batch_size: scalar int tensor, the batch of the run using `initial_state`
        (`stateful_dynamic_rnn` passes `tf.shape(inputs)[0]`). By default: `batch_size` if fixed,
        otherwise the placeholder `.batch_size`, which defaults to the rows the state holds.

    Attributes:
      variables: nest of variables shaped like the state, in LOCAL_VARIABLES and STATE_VARIABLES.
      step: int64 scalar `placeholder_with_default(-1)`; feed 0 to start the run from `reset_value`.
      reset_rows: bool `[batch]` `placeholder_with_default(all False)`; True rows start from `reset_value`.
      initial_state: the state a run starts from (use it as the RNN's initial state).
      reset_value: the nest a reset starts from, for the batch of the run.
      reset_op: sets the state to `reset_value` (zeros keep the current batch size).
      initializer: initializes the variables (StatefulSession runs it for you).
      writes: int64 scalar, how many times the state has been written (kept, reset or assigned),
        read under the run's lock.
      device: the device of the state's variables and ops ("" where the placer chooses).

    Threads: every op that reads or writes the state takes the state's lock (a `MutexV2`) for the
    run, once however many of them the run fetches. A run that fetches a keep, reset or assign
    holds it until its writes are done, so such runs are serialized; a run that only reads holds
    it while it reads. Runs on different states run in parallel. A raw run that fetches the keep
    ops of several states locks them in no fixed order, so run such runs from one thread at a
    time, or through `StatefulSession`, which orders them.

    Placement: the variables, the lock and every op that reads or writes them are on one device,
    `device` if given, else the device the ops built here get (`.device` says which). So under
    `tf.compat.v1.train.replica_device_setter`, which puts every variable on a parameter server,
    the state stays on the worker device that runs the RNN: each worker of a between-graph
    replicated job carries its own streams, and no state crosses the network. Pass `device`
    (e.g. "/job:ps/task:0") to put the state elsewhere; states of the same name on one shared
    device are one state, which every worker using it reads and overwrites.
    """

    def __init__(
        self,
        cell_or_state_size: RNNCell | StateSize,
        batch_size: int | None,
        dtype: DTypeLike = tf.float32,
        name: str = "rnn_state",
        reset_value: StateNest | None = None,
        run_batch_size: int | tf.Tensor | None = None,
        device: str | None = None,
    ) -> None:
        require_graph_mode("tfstate.RNNState")
        self._state_size = getattr(cell_or_state_size, "state_size", cell_or_state_size)
        self._dtype = tf.as_dtype(dtype)
        if not self._dtype.is_floating:
            raise ValueError(f"RNNState '{name}' needs a float dtype; got {self._dtype.name}.")
        if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
            raise ValueError(f"RNNState '{name}' needs batch_size a positive int or None; got {batch_size!r}.")
        self._fixed_batch = None if batch_size is None else int(batch_size)
        self._paths = state_paths(self._state_size)
        self._widths = [_width(size) for size in tf.nest.flatten(self._state_size)]
        self._order = next(_creation_order)  # `hold` takes states' Python locks in this order
        self._python_lock = threading.Lock()
        with tf.compat.v1.name_scope(None, default_name=name) as scope, contextlib.ExitStack() as placement:
            self.name = scope.rstrip("/")
            with contextlib.nullcontext() if device is None else tf.device(device):
                self._mutex = tf.raw_ops.MutexV2(shared_name=f"{self.name}/mutex", name="mutex")
            self.device = self._mutex.device
            placement.enter_context(self._on_device())
            self._flat_variables = [self._make_variable(path, width) for path, width in zip(self._paths, self._widths)]
            self.variables = tf.nest.pack_sequence_as(self._state_size, self._flat_variables)
            self._writes = _bookkeeping_variable("writes")  # counts writes: StatefulSession's commit checks it
            # A batch_size=None state counts its rows in a variable of its own rather than reading its
            # variables' shape: Grappler infers a variable's shape from the assigns of the run it
            # optimizes and would fold that shape to the batch being stored, wrongly for a run that
            # starts from a state of another batch size (or of none).
            self._row_count = None if self._fixed_batch is not None else _bookkeeping_variable("rows")
            bookkeeping = [self._writes] + ([self._row_count] if self._row_count is not None else [])
            self.initializer = tf.compat.v1.variables_initializer(
                self._flat_variables + bookkeeping, name="initializer"
            )
            self._is_initialized = tf.reduce_all(
                tf.stack([v.is_initialized() for v in self._flat_variables + bookkeeping]), name="is_initialized"
            )
            self._build_locked_reads()
            if run_batch_size is not None:
                self.batch_size = tf.convert_to_tensor(run_batch_size, tf.int32)
            elif self._fixed_batch is not None:
                self.batch_size = tf.constant(self._fixed_batch, tf.int32)
            else:
                self.batch_size = tf.compat.v1.placeholder_with_default(self._stored_rows, [], name="batch_size")
            self.step = tf.compat.v1.placeholder_with_default(tf.constant(-1, tf.int64), [], name="step")
            self.reset_rows = tf.compat.v1.placeholder_with_default(
                tf.zeros([self._stored_rows], tf.bool), [self._fixed_batch], name="reset_rows"
            )
            self._given_reset_value = self._check_reset_value(reset_value)
            self.reset_value = self._reset_tensors(self.batch_size)
            self.initial_state = self._build_initial_state(self.batch_size, self.reset_value)
            self.reset_op = self._build_reset_op()
            self._assign_placeholders = [
                tf.compat.v1.placeholder(self._dtype, [self._fixed_batch] + width, name=f"assign/{path}")
                for path, width in zip(self._paths, self._widths)
            ]
            self._expected_writes = tf.compat.v1.placeholder_with_default(
                tf.constant(-1, tf.int64), [], name="assign/expected_writes"
            )
            self._assign_op = self._write(self._assign_placeholders, "assign", self._writes_check())

    def _on_device(self):
        return only_on(self.device)

    def _build_locked_reads(self):
        """The run's lock, and every read of the variables made under it (`_stored`, `_stored_rows`, `writes`).

        The lock tensor holds the state's mutex until every op consuming it has run: the reads'
        own consumer right after them, and each write op's consumer after its writes.
        """
        self._lock = tf.raw_ops.MutexLock(mutex=self._mutex, name="lock")
        with tf.control_dependencies([self._lock]):
            reads = [v.read_value() for v in self._flat_variables] + [self._writes.read_value()]
            if self._row_count is not None:
                reads.append(tf.cast(self._row_count.read_value(), tf.int32))
        with tf.control_dependencies(reads):
            self._reads_done = tf.raw_ops.ConsumeMutexLock(mutex_lock=self._lock, name="reads_done")
        with tf.control_dependencies([self._reads_done]):
            reads = [
                tf.identity(read, name=f"read/{path}") for read, path in zip(reads, self._paths + ["writes", "rows"])
            ]
        self._stored = reads[: len(self._paths)]
        self.writes = reads[len(self._paths)]
        if self._row_count is not None:
            self._stored_rows = reads[-1]
        else:
            self._stored_rows = tf.constant(self._fixed_batch, tf.int32)

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

    @property
    def fixed_batch_size(self) -> int | None:
        """The batch size the state always has, or None when it may change at a reset."""
        return self._fixed_batch

    def _make_variable(self, path, width):
        rows = self._fixed_batch if self._fixed_batch is not None else 0
        return tf.compat.v1.Variable(
            tf.zeros([rows] + width, self._dtype),
            shape=tf.TensorShape([self._fixed_batch] + width),
            trainable=False,
            use_resource=True,
            name=path,
            collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES, STATE_VARIABLES],
        )

    def _check_reset_value(self, reset_value):
        return check_reset_value(self._state_size, reset_value, self._dtype, f"RNNState '{self.name}'")

    def _reset_tensors(self, rows):
        """The flat reset value for `rows` rows."""
        if self._given_reset_value is None:
            return tf.nest.pack_sequence_as(
                self._state_size, [tf.zeros(tf.concat([[rows], width], 0), self._dtype) for width in self._widths]
            )
        return tf.nest.pack_sequence_as(
            self._state_size,
            [
                tf.broadcast_to(value, tf.concat([[rows], width], 0))
                for value, width in zip(self._given_reset_value, self._widths)
            ],
        )

    def _batch_check(self, run_batch):
        """An assert op: the run's batch must equal the stored rows (carried run) and the reset_rows length."""
        rows_fed = tf.shape(self.reset_rows)[0]
        fix = (
            "This state has a fixed batch size; build it with batch_size=None to let the batch change at a reset."
            if self._fixed_batch is not None
            else "Feed step=0 to start at a new batch size."
        )
        message = tf.strings.format(
            f"RNNState {self.name} holds {{}} rows, but the run fed {{}} rows and {{}} reset_rows flags. {fix}",
            (self._stored_rows, run_batch, rows_fed),
        )
        ok = tf.logical_and(tf.equal(self._stored_rows, run_batch), tf.equal(rows_fed, run_batch))
        return tf.debugging.Assert(ok, [message], name="check_batch")

    def initial_state_for(self, run_batch_size: int | tf.Tensor) -> StateNest:
        """The initial state (same step flag, reset rows and lock) for another consumer's batch, e.g. `generate`'s.

        Builds new ops: call it at graph-building time, once per consumer.
        """
        with tf.compat.v1.name_scope(f"{self.name}/"), self._on_device():
            run_batch_size = tf.convert_to_tensor(run_batch_size, tf.int32)
            return self._build_initial_state(run_batch_size, self._reset_tensors(run_batch_size))

    def _build_initial_state(self, run_batch, reset_value):
        def fresh():
            return tf.nest.flatten(reset_value)

        def carried():
            with tf.control_dependencies([] if fixed else [self._batch_check(run_batch)]):
                rows = tf.reshape(self.reset_rows, [-1, 1])
                return [
                    tf.where(rows, reset, value) for reset, value in zip(tf.nest.flatten(reset_value), self._stored)
                ]

        fixed = self._fixed_batch is not None
        with tf.control_dependencies([self._batch_check(run_batch)] if fixed else []):
            # a state that holds no rows yet (batch_size=None, never run) starts fresh like step 0
            start_fresh = tf.logical_or(tf.equal(self.step, 0), tf.equal(self._stored_rows, 0))
            flat = tf.cond(start_fresh, fresh, carried, name="initial_state")
        flat = [tf.ensure_shape(t, [self._fixed_batch] + width) for t, width in zip(flat, self._widths)]
        return tf.nest.pack_sequence_as(self._state_size, flat)

    def _build_reset_op(self):
        if self._given_reset_value is None:
            values = self._reset_tensors(self._stored_rows)
        else:
            first = self._given_reset_value[0]
            has_batch = self._fixed_batch is None and first.shape.rank == 1 + len(self._widths[0])
            values = self._reset_tensors(tf.shape(first)[0] if has_batch else self._stored_rows)
        return self._write(tf.nest.flatten(values), "reset")

    def keep(self, final_state: StateNest) -> tf.Operation:
        """An op that stores `final_state` (a nest like the state) as the state: all parts or none.

        A run that does not fetch it leaves the state as it was, so the next run continues from the
        old state (a peek). The run holds the state's lock from its reads until these writes are done.
        """
        require_graph_mode("RNNState.keep")
        check_structure(self._state_size, final_state, f"The state kept by RNNState '{self.name}'")
        values = [tf.convert_to_tensor(value) for value in tf.nest.flatten(final_state)]
        for path, width, value in zip(self._paths, self._widths, values):
            if value.dtype != self._dtype or not value.shape.is_compatible_with([self._fixed_batch] + width):
                raise ValueError(
                    f"RNNState '{self.name}' part '{path}' is {self._dtype.name} "
                    f"[{self._fixed_batch or 'batch'}, {', '.join(map(str, width))}]; "
                    f"keep got {value.dtype.name} {value.shape}."
                )
        return self._write(values, "keep")

    def _writes_check(self):
        """An assert op: the state was written `expected_writes` times (skipped when that is fed -1)."""
        expected = self._expected_writes
        message = tf.strings.format(
            f"RNNState '{self.name}' was written by another run while a StatefulSession run was using it "
            "(write {} expected, found {}); its result was not kept. Run keep ops of a state either through "
            "one StatefulSession or as raw session runs, not both at once.",
            (expected + 1, self.writes + 1),
        )
        return tf.debugging.Assert(
            tf.logical_or(expected < 0, tf.equal(expected, self.writes)), [message], name="check_writes"
        )

    def _write(self, flat_values, name, *checks):
        """An op that makes `flat_values` the state under the run's lock (after its reads and `checks`)."""
        with self._on_device():
            with tf.control_dependencies([self._reads_done, *checks]):
                assigns = [
                    variable.assign(value, read_value=False)
                    for variable, value in zip(self._flat_variables, flat_values)
                ]
                if self._row_count is not None:
                    rows = tf.cast(tf.shape(flat_values[0])[0], tf.int64)
                    assigns.append(self._row_count.assign(rows, read_value=False))
            with tf.control_dependencies(assigns):
                counted = self._writes.assign_add(1, read_value=False)
            with tf.control_dependencies([counted]):
                return tf.group(tf.raw_ops.ConsumeMutexLock(mutex_lock=self._lock), name=name)

    def _check_values(self, values):
        """Validates a nest of arrays against the state; returns the feed dict that assigns them.

        Raises ValueError naming the part, the expected and the given shape or dtype.
        """
        check_structure(self._state_size, values, f"The values for RNNState '{self.name}'")
        feed, rows = {}, set()
        for placeholder, path, width, value in zip(
            self._assign_placeholders, self._paths, self._widths, tf.nest.flatten(values)
        ):
            array = np.asarray(value)
            expected = f"[{self._fixed_batch or 'batch'}, {', '.join(map(str, width))}]"
            if array.dtype.kind != "f":
                raise ValueError(
                    f"RNNState '{self.name}' part '{path}' holds {self._dtype.name} values; got {array.dtype}."
                )
            if (
                array.ndim != 1 + len(width)
                or list(array.shape[1:]) != width
                or (self._fixed_batch is not None and array.shape[0] != self._fixed_batch)
            ):
                raise ValueError(f"RNNState '{self.name}' part '{path}' has shape {expected}; got {list(array.shape)}.")
            rows.add(array.shape[0])
            feed[placeholder] = array.astype(self._dtype.as_numpy_dtype, copy=False)
        if len(rows) > 1:
            raise ValueError(f"RNNState '{self.name}' parts must all have the same batch size; got {sorted(rows)}.")
        return feed

    def assign(self, sess: tf.compat.v1.Session, values: StateValues) -> None:
        """Sets the state to `values` (a nest of arrays like the state), all parts in one run.

        Raises ValueError (naming the part, the expected and the given) before anything is set.
        """
        assign_states(sess, [self], [values])

    def read(self, sess: tf.compat.v1.Session) -> StateValues:
        """The stored state as a nest of NumPy arrays (read under the state's lock: never half of a write)."""
        return read_states(sess, [self])[0]

    def initialize_if_needed(self, sess: tf.compat.v1.Session) -> None:
        """Initializes the state variables unless they already are (then the state is left alone)."""
        if not sess.run(self._is_initialized):
            sess.run(self.initializer)


def assign_states(
    sess: tf.compat.v1.Session,
    states: Sequence[RNNState],
    values: Sequence[StateValues],
    expected_writes: Sequence[int] | None = None,
) -> None:
    """Sets each state to its values in one run; every value is checked before anything is set.

    With `expected_writes` (one count per state, as read by an earlier run), the run fails and sets
    nothing if another run has written one of the states since.
    """
    feed, ops = {}, []
    for index, (state, value) in enumerate(zip(states, values)):
        feed.update(state._check_values(value))
        if expected_writes is not None:
            feed[state._expected_writes] = expected_writes[index]
        ops.append(state._assign_op)
    sess.run(ops, feed)


def read_states(sess: tf.compat.v1.Session, states: Sequence[RNNState]) -> list[StateValues]:
    """Every state as a nest of NumPy arrays, all read in one run (each under its lock)."""
    stored = sess.run([state._stored for state in states])
    return [tf.nest.pack_sequence_as(state.state_size, flat) for state, flat in zip(states, stored)]


@contextlib.contextmanager
def hold(states: Iterable[RNNState]) -> Iterator[None]:
    """Holds the Python-side locks of `states` (in creation order, so two holders never deadlock).

    `StatefulSession` holds them across the runs of one call, which the in-graph lock (one run
    long) cannot cover.
    """
    ordered = sorted(set(states), key=lambda state: state._order)
    with contextlib.ExitStack() as stack:
        for state in ordered:
            stack.enter_context(state._python_lock)
        yield
