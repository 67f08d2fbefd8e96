"""StatefulSession: a session wrapper that runs stateful RNNs with keep, reset, step and saved state.

A `run` with keep is all-or-nothing, in two session runs:

    fetched, final states, write counts = sess.run(fetches, final states, write counts)
    (raises: the state is left as it was)
    sess.run(assign final states, if each state's write count is unchanged)

and the RNNs' states stay locked (in Python, in creation order) from the first run to the
second, so two threads running the same session never interleave their runs.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfstate import _npz
from tfstate._types import StateValues
from tfstate.rnn import StatefulRNN, check_stateful_rnns
from tfstate.state import assign_states, hold, read_states

_FORMAT = "tfstate-state-v2"  # arrays named '<state name>/<part path>'
_FORMAT_V1 = "tfstate-state-v1"  # arrays named '<RNN's position>/<part path>' (tfstate 0.1)


class StatefulSession:
    """Runs fetches on `sess` while carrying the state of the given `StatefulRNN`s.

        stateful = StatefulSession(sess, encoder, decoder)
        for chunk in stream:
            loss = stateful.run(loss_op, {x: chunk})        # carries every RNN's state
        stateful.save_state("state.npz")

    The RNNs' state variables are initialized on construction if they are not yet.
    A `run` that raises (a failing fetch, `check_numerics` tripping on NaN) leaves every state as
    it was. Calls from several threads are serialized per state; `save_state` and `get_state` see
    every state whole, as of one moment.
    """

    def __init__(self, sess: tf.compat.v1.Session, *rnns: StatefulRNN) -> None:
        if not rnns:
            raise ValueError("StatefulSession needs at least one StatefulRNN; got none.")
        rnns = check_stateful_rnns(list(rnns) if len(rnns) > 1 else rnns[0], "StatefulSession")
        self.sess = sess
        self.rnns = rnns
        self._states = [rnn.state for rnn in rnns]
        self._finals = [rnn.final_state for rnn in rnns]
        self._keeps = {id(rnn.keep) for rnn in rnns}
        for state in self._states:
            state.initialize_if_needed(sess)

    def run(
        self,
        fetches: Any,
        feed_dict: Mapping[Any, Any] | None = None,
        keep: bool = True,
        step: int | None = None,
        reset_rows: Sequence[bool] | np.ndarray | None = None,
        options: tf.compat.v1.RunOptions | None = None,
        run_metadata: tf.compat.v1.RunMetadata | None = None,
    ) -> Any:
        """`sess.run(fetches, feed_dict)` that also keeps every RNN's final state (unless keep=False).

        `step=0` starts every RNN from its reset value; `reset_rows` (bool per row) resets those rows.
        The result is exactly that of `fetches`. With keep, the states move only if the whole run
        succeeded (see the module docstring); a concurrent raw run that keeps one of these states
        meanwhile makes this call fail instead of losing either update.
        """
        feed = dict(feed_dict or {})
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, numbers.Integral):
                raise ValueError(f"step must be an int (0 starts from the reset value) or None; got {step!r}.")
            feed.update({rnn.step: step for rnn in self.rnns})
        if reset_rows is not None:
            rows = np.asarray(reset_rows)
            if rows.ndim != 1 or rows.dtype != bool:
                raise ValueError(
                    f"reset_rows must be a 1-D bool array, one flag per row; got {rows.dtype} "
                    f"of shape {list(rows.shape)}."
                )
            feed.update({rnn.reset_rows: rows for rnn in self.rnns})
        if not keep:
            return self.sess.run(fetches, feed, options=options, run_metadata=run_metadata)
        if any(id(fetch) in self._keeps for fetch in tf.nest.flatten(fetches)):
            raise ValueError(
                "StatefulSession.run keeps the state itself; do not fetch the RNNs' keep ops "
                "(or pass keep=False to fetch them yourself)."
            )
        with hold(self._states):
            result, finals, writes = self.sess.run(
                (fetches, self._finals, [state.writes for state in self._states]),
                feed,
                options=options,
                run_metadata=run_metadata,
            )
            assign_states(self.sess, self._states, finals, expected_writes=writes)
        return result

    def reset(self) -> None:
        """Resets every RNN's state to its reset value."""
        with hold(self._states):
            self.sess.run([rnn.reset for rnn in self.rnns])

    def get_state(self) -> tuple[StateValues, ...]:
        """A tuple with one nest of NumPy arrays per RNN, in the order given, read in one run."""
        with hold(self._states):
            return tuple(read_states(self.sess, self._states))

    def set_state(self, values: Sequence[StateValues]) -> None:
        """Sets every RNN's state from `values` (as `get_state` returns); all checked before any is set."""
        if not isinstance(values, (tuple, list)) or len(values) != len(self.rnns):
            raise ValueError(
                f"set_state needs a tuple with one state per RNN ({len(self.rnns)}); "
                f"got {type(values).__name__} of length {len(values) if hasattr(values, '__len__') else '?'}."
            )
        with hold(self._states):
            assign_states(self.sess, self._states, values)

    def _keys(self, format_name):
        """{state: [array name per part]} in a state file of `format_name`."""
        return {
            state: [f"{state.name if format_name == _FORMAT else index}/{path}" for path in state.paths]
            for index, state in enumerate(self._states)
        }

    def save_state(self, path: str | os.PathLike) -> None:
        """Writes every RNN's state to an .npz file, atomically (a crash leaves the old file).

        Arrays are named by state (`rnn_state/c`, ...), so `load_state` puts each back into the
        state of the same name, whatever order the RNNs are given in.
        """
        keys = self._keys(_FORMAT)
        arrays = {}
        for state, value in zip(self._states, self.get_state()):
            arrays.update(zip(keys[state], tf.nest.flatten(value)))
        _npz.write_arrays(path, _FORMAT, arrays)

    def load_state(self, path: str | os.PathLike) -> None:
        """Sets every RNN's state from a `save_state` file; the file is checked whole before anything is set.

        Raises:
          ValueError: the file is unreadable, of another model (other state names or shapes), or damaged;
            no state is changed.
        """
        format_name = _npz.read_format(path, [_FORMAT, _FORMAT_V1])
        keys = self._keys(format_name)
        expected = {}
        for state, names in keys.items():
            for name, size in zip(names, tf.nest.flatten(state.state_size)):
                expected[name] = [state.fixed_batch_size] + tf.TensorShape(size).as_list()
        arrays = _npz.read_arrays(path, format_name, expected)
        values = [
            tf.nest.pack_sequence_as(state.state_size, [arrays[name] for name in keys[state]]) for state in self._states
        ]
        self.set_state(tuple(values))
