"""StatefulSession: a session wrapper that runs stateful RNNs with keep, reset, step and saved state."""

import zipfile

import numpy as np
import tensorflow as tf

from tfstate._files import atomic_writer

_FORMAT_KEY = "__tfstate_format__"
_FORMAT = "tfstate-state-v1"


class StatefulSession:
    """Runs fetches on `sess` while carrying the state of the given `StatefulRNN`s.

        stateful = StatefulSession(sess, encoder, decoder)
        for chunk in stream:
            loss = stateful.run(loss_op, {x: chunk})        # carries every RNN's state
        stateful.save_state("state.npz")

    The RNNs' state variables are initialized on construction if they are not yet.
    """

    def __init__(self, sess, *rnns):
        if not rnns:
            raise ValueError("StatefulSession needs at least one StatefulRNN; got none.")
        self.sess = sess
        self.rnns = rnns
        self._keeps = [rnn.keep for rnn in rnns]
        self._resets = [rnn.reset for rnn in rnns]
        for rnn in rnns:
            rnn.state.initialize_if_needed(sess)

    def run(self, fetches, feed_dict=None, keep=True, step=None, reset_rows=None, options=None, run_metadata=None):
        """`sess.run(fetches, feed_dict)` that also keeps every RNN's final state (unless keep=False).

        `step=0` starts every RNN from its reset value; `reset_rows` (bool per row) resets those rows.
        The values of the keep ops are not returned: the result is exactly that of `fetches`.
        """
        feed = dict(feed_dict or {})
        if step is not None:
            feed.update({rnn.step: step for rnn in self.rnns})
        if reset_rows is not None:
            rows = np.asarray(reset_rows)
            if rows.ndim != 1 or rows.dtype != bool:
                raise ValueError(f"reset_rows must be a 1-D bool array, one flag per row; got {rows.dtype} "
                                 f"of shape {list(rows.shape)}.")
            feed.update({rnn.reset_rows: rows for rnn in self.rnns})
        if not keep:
            return self.sess.run(fetches, feed, options=options, run_metadata=run_metadata)
        result, _ = self.sess.run((fetches, self._keeps), feed, options=options, run_metadata=run_metadata)
        return result

    def reset(self):
        """Resets every RNN's state to its reset value."""
        self.sess.run(self._resets)

    def get_state(self):
        """A tuple with one nest of NumPy arrays per RNN, in the order given."""
        return tuple(rnn.state.read(self.sess) for rnn in self.rnns)

    def set_state(self, values):
        """Sets every RNN's state from `values` (as `get_state` returns); all checked before any is set."""
        if not isinstance(values, (tuple, list)) or len(values) != len(self.rnns):
            raise ValueError(f"set_state needs a tuple with one state per RNN ({len(self.rnns)}); "
                             f"got {type(values).__name__} of length {len(values) if hasattr(values, '__len__') else '?'}.")
        feed = {}
        for rnn, value in zip(self.rnns, values):
            feed.update(rnn.state.check_values(value))
        self.sess.run([rnn.state.assign_op for rnn in self.rnns], feed)

    def _flat_keys(self):
        return [f"{index}/{path}" for index, rnn in enumerate(self.rnns) for path in rnn.state.paths]

    def save_state(self, path):
        """Writes every RNN's state to an .npz file, atomically (a crash leaves the old file)."""
        arrays = {_FORMAT_KEY: np.array(_FORMAT)}
        flat = [array for state in self.get_state() for array in tf.nest.flatten(state)]
        arrays.update(zip(self._flat_keys(), flat))
        with atomic_writer(path, binary=True) as file:
            np.savez(file, **arrays)

    def load_state(self, path):
        """Sets every RNN's state from a `save_state` file; the file is checked whole before anything is set."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise ValueError(f"{path} is not a readable tfstate state file ({type(error).__name__}: {error}).") from None
        if arrays.pop(_FORMAT_KEY, None) != _FORMAT:
            raise ValueError(f"{path} is not a tfstate state file: no '{_FORMAT_KEY}' = '{_FORMAT}' entry.")
        expected = self._flat_keys()
        if sorted(arrays) != sorted(expected):
            missing = sorted(set(expected) - set(arrays))
            unexpected = sorted(set(arrays) - set(expected))
            raise ValueError(f"{path} does not match this session's state: missing {missing}, unexpected {unexpected}.")
        values, position = [], 0
        for rnn in self.rnns:
            count = len(rnn.state.paths)
            flat = [arrays[key] for key in expected[position:position + count]]
            values.append(tf.nest.pack_sequence_as(rnn.state.state_size, flat))
            position += count
        self.set_state(tuple(values))

