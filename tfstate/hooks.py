"""StateHook: carries stateful RNNs' state through `MonitoredTrainingSession` runs, resets and checkpoints."""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Sequence
from typing import Literal

import tensorflow as tf

from tfstate._checks import require_graph_mode
from tfstate.checkpoint import prune_snapshots, restore_snapshot, save_snapshot, snapshot_path
from tfstate.rnn import StatefulRNN, check_stateful_rnns
from tfstate.state import assign_states

_log = logging.getLogger("tfstate")
_MISSING_SNAPSHOT = ("error", "fresh_start")


class StateHook(tf.compat.v1.train.SessionRunHook):
    """A `SessionRunHook` that keeps the final state of `rnns` after every run of a `MonitoredSession`.

        state_hook = tfstate.StateHook(rnn, reset_every_n_steps=100, checkpoint_dir="ckpt")
        saver_hook = tf.compat.v1.train.CheckpointSaverHook("ckpt", save_steps=50, listeners=[state_hook.listener()])
        with tf.compat.v1.train.MonitoredTrainingSession(
                checkpoint_dir="ckpt", save_checkpoint_secs=None,       # the saver hook below saves instead
                hooks=[state_hook, saver_hook, tf.compat.v1.train.StopAtStepHook(last_step=1000)]) as sess:
            while not sess.should_stop():
                sess.run(train_op, {x: next_chunk()})

    What it does, all with ops the RNNs built (so it works on the finalized graph):

        session created (also again after a recovery):
            initialize the states if needed
            with checkpoint_dir and a checkpoint restored: set the states from its snapshot
            count = global step (0 without one)
        every run:
            fetch the final states too; feed step=0 when count % reset_every_n_steps == 0
            (a run that feeds an RNN's step itself is left alone)
            the run raises: nothing more happens, the states are as they were
            it succeeds: store the final states (a second, small run); count += 1
        the listener, on each checkpoint save:
            before: write the states to `<checkpoint>.tfstate.npz` (`tfstate.checkpoint`)
            after: delete the snapshots of checkpoints the Saver deleted

    So every run through the session runs the RNNs and carries their state: feed their inputs in
    every run (`sess.run_step_fn(lambda step_context: step_context.session.run(...))` runs without them).
    With one global-step increment per run the count is the global step, so a restarted job
    resets at the same runs as an uninterrupted one. The snapshot is written before the
    checkpoint, so the checkpoint index never names a checkpoint without its snapshot.

    Order: put the StateHook before the `CheckpointSaverHook` that carries its listener, in the
    same hooks list (`MonitoredTrainingSession` runs `chief_only_hooks` before `hooks`), so each
    run's state is stored before the checkpoint is saved; the listener raises otherwise.
    In a cluster, give `checkpoint_dir` to the chief's StateHook only: a snapshot holds the
    streams of the process that wrote it, and other workers start theirs from the reset value.

    Args:
      rnns: a `StatefulRNN` (what `stateful_dynamic_rnn` returns) or a list of them.
      reset_every_n_steps: the runs counted 0, n, 2n, ... start from the reset value (the step
        flag); None: only when the run feeds the step flag itself.
      checkpoint_dir: where checkpoints are restored from and their snapshots written; None:
        the state is neither restored nor saved.
      checkpoint_basename: the `CheckpointSaverHook`'s checkpoint_basename.
      missing_snapshot: what a restored checkpoint without a snapshot does: "error" (raise,
        the default) or "fresh_start" (the streams start from their reset value, with a warning:
        for checkpoints written before the state was saved). A damaged or foreign snapshot
        always raises.
    """

    def __init__(
        self,
        rnns: StatefulRNN | Sequence[StatefulRNN],
        reset_every_n_steps: int | None = None,
        checkpoint_dir: str | None = None,
        checkpoint_basename: str = "model.ckpt",
        missing_snapshot: Literal["error", "fresh_start"] = "error",
    ) -> None:
        self._rnns = check_stateful_rnns(rnns, "StateHook")
        if reset_every_n_steps is not None and (
            isinstance(reset_every_n_steps, bool)
            or not isinstance(reset_every_n_steps, numbers.Integral)
            or reset_every_n_steps < 1
        ):
            raise ValueError(
                f"StateHook reset_every_n_steps must be a positive int or None; got {reset_every_n_steps!r}."
            )
        if missing_snapshot not in _MISSING_SNAPSHOT:
            raise ValueError(
                f"StateHook missing_snapshot must be one of {_MISSING_SNAPSHOT}; got {missing_snapshot!r}."
            )
        self.reset_every_n_steps = reset_every_n_steps
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_basename = checkpoint_basename
        self.missing_snapshot = missing_snapshot
        self._states = [rnn.state for rnn in self._rnns]
        self._fetches = {
            "final_states": [rnn.final_state for rnn in self._rnns],
            "writes": [state.writes for state in self._states],
        }
        self._keeps = {id(rnn.keep) for rnn in self._rnns}
        self._global_step = None
        self._session = None  # the session set up by after_create_session
        self._count = 0

    def listener(self) -> tf.compat.v1.train.CheckpointSaverListener:
        """A `CheckpointSaverListener` that saves the state beside each checkpoint of a `CheckpointSaverHook`."""
        if self.checkpoint_dir is None:
            raise ValueError("StateHook.listener() needs the hook's checkpoint_dir (the CheckpointSaverHook's).")
        return _SnapshotListener(self)

    def begin(self) -> None:
        require_graph_mode("tfstate.StateHook")
        graph = tf.compat.v1.get_default_graph()
        if any(state.step.graph is not graph for state in self._states):
            raise ValueError("StateHook's RNNs were built in another graph than the one the MonitoredSession runs.")
        self._global_step = tf.compat.v1.train.get_global_step()

    def after_create_session(self, session: tf.compat.v1.Session, coord: tf.compat.v1.train.Coordinator) -> None:
        self._session = None
        for state in self._states:
            state.initialize_if_needed(session)
        if self.checkpoint_dir is not None:
            self._restore(session)
        self._count = 0 if self._global_step is None else int(session.run(self._global_step))
        self._session = session

    def _restore(self, session):
        checkpoint = tf.train.latest_checkpoint(self.checkpoint_dir)
        if checkpoint is None:
            return
        if self._global_step is not None:
            reader = tf.train.load_checkpoint(checkpoint)
            name = self._global_step.op.name
            current = int(session.run(self._global_step))
            if reader.has_tensor(name) and int(reader.get_tensor(name)) != current:
                raise RuntimeError(
                    f"StateHook: the session's global step is {current}, but the latest checkpoint in "
                    f"'{self.checkpoint_dir}' is '{checkpoint}' (global step {int(reader.get_tensor(name))}): the "
                    "session did not restore it, so its state snapshot does not apply. Give the session "
                    "(MonitoredTrainingSession or its session creator) the StateHook's checkpoint_dir."
                )
        if self.missing_snapshot == "fresh_start" and not os.path.exists(snapshot_path(checkpoint)):
            _log.warning(
                "Checkpoint '%s' has no state snapshot: the streams start from their reset value "
                "(StateHook missing_snapshot='fresh_start').",
                checkpoint,
            )
            session.run([rnn.reset for rnn in self._rnns])
            return
        restore_snapshot(session, self._rnns, checkpoint)

    def before_run(self, run_context: tf.compat.v1.train.SessionRunContext) -> tf.compat.v1.train.SessionRunArgs:
        args = run_context.original_args
        if any(id(fetch) in self._keeps for fetch in tf.nest.flatten(args.fetches)):
            raise ValueError(
                "StateHook keeps the state itself; do not fetch the RNNs' keep ops in runs of its MonitoredSession."
            )
        feed = {}
        if self.reset_every_n_steps is not None and self._count % self.reset_every_n_steps == 0:
            fed = {key if isinstance(key, str) else getattr(key, "name", None) for key in args.feed_dict or {}}
            feed = {rnn.step: 0 for rnn in self._rnns if rnn.step.name not in fed}
        return tf.compat.v1.train.SessionRunArgs(self._fetches, feed_dict=feed)

    def after_run(
        self, run_context: tf.compat.v1.train.SessionRunContext, run_values: tf.compat.v1.train.SessionRunValues
    ) -> None:
        results = run_values.results
        assign_states(run_context.session, self._states, results["final_states"], expected_writes=results["writes"])
        self._count += 1

    def _check_ready(self, session):
        if self._session is not session:
            raise RuntimeError(
                "The StateHook has not set up the session this checkpoint is saved from: put the StateHook before "
                "the CheckpointSaverHook that carries its listener, in the same hooks list of the same "
                "MonitoredSession (MonitoredTrainingSession runs chief_only_hooks before hooks)."
            )


class _SnapshotListener(tf.compat.v1.train.CheckpointSaverListener):
    """Writes the StateHook's states beside each checkpoint, and deletes those of deleted checkpoints."""

    def __init__(self, hook):
        self._hook = hook

    def _checkpoint_path(self, step):
        return f"{os.path.join(self._hook.checkpoint_dir, self._hook.checkpoint_basename)}-{step}"

    def _mismatch(self, expected, found):
        return ValueError(
            f"StateHook expects checkpoint '{expected}', but {found}: give the StateHook the "
            "CheckpointSaverHook's checkpoint_dir and checkpoint_basename."
        )

    def before_save(self, session, global_step_value):
        self._hook._check_ready(session)
        path = self._checkpoint_path(global_step_value)
        if not os.path.isdir(self._hook.checkpoint_dir):
            raise self._mismatch(path, "its folder does not exist")
        save_snapshot(session, self._hook._rnns, path)

    def after_save(self, session, global_step_value):
        expected = self._checkpoint_path(global_step_value)
        saved = tf.train.latest_checkpoint(self._hook.checkpoint_dir)
        if saved is None or os.path.realpath(saved) != os.path.realpath(expected):
            raise self._mismatch(expected, f"the CheckpointSaverHook saved another (latest there: '{saved}')")
        prune_snapshots(self._hook.checkpoint_dir, self._hook.checkpoint_basename)
