"""State and checkpoints: the state is left out of checkpoints unless asked, in them or in a snapshot beside each.

The policy:

    tf.compat.v1.train.Saver()                          # weights only: the state is in LOCAL_VARIABLES
    Saver(tf.compat.v1.global_variables() + saveable_state())    # opt in: the state inside the checkpoint
    save_snapshot(sess, rnns, "ckpt/model.ckpt-100")    # opt in: the state in ckpt/model.ckpt-100.tfstate.npz
    restore_snapshot(sess, rnns, "ckpt/model.ckpt-100") # a missing, damaged or foreign snapshot raises

A restarted stream that silently starts from zeros is the failure this guards against: a state
left out of a checkpoint restarts every stream, so including it is a choice made in code.
`tfstate.StateHook` writes and restores the snapshots for `MonitoredTrainingSession`.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

import tensorflow as tf
from tensorflow.python.training.saving import saveable_object

from tfstate._npz import StateFileError
from tfstate.keyed import KeyedState, saveables
from tfstate.keyed_rnn import KeyedRNN
from tfstate.rnn import StatefulRNN
from tfstate.session import StatefulSession
from tfstate.state import STATE_VARIABLES, RNNState

SNAPSHOT_SUFFIX = ".tfstate.npz"


def saveable_state(
    *rnns: StatefulRNN | RNNState | KeyedRNN | KeyedState, graph: tf.Graph | None = None
) -> list[tf.Variable | saveable_object.SaveableObject]:
    """What puts the state of `rnns` (default: every state and keyed table in the graph) into a `Saver`'s checkpoint.

        saver = tf.compat.v1.train.Saver(tf.compat.v1.global_variables() + tfstate.saveable_state())

    Each `RNNState`'s parts come with its bookkeeping (the row count of a batch_size=None state,
    which says whether the state holds a stream), so `saver.restore` brings the streams back
    exactly; a keyed table comes as one `SaveableObject` (its streams, rows and keep counts).
    `MonitoredTrainingSession` initializes local variables after it restores a checkpoint, which
    would put an `RNNState` back to zeros: there, use `tfstate.StateHook` and its snapshots.

    Args:
      *rnns: `StatefulRNN`s, `RNNState`s, `KeyedRNN`s or `KeyedState`s.
      graph: the graph to look in (default: the default graph, or that of `rnns`).

    Returns:
      A list of variables (in creation order) and keyed tables' `SaveableObject`s, for `Saver(var_list=...)`.
    """
    states, tables = [], []
    for rnn in rnns:
        state = getattr(rnn, "state", rnn)  # a StatefulRNN's RNNState, a KeyedRNN's KeyedState
        if isinstance(state, RNNState):
            states.append(state)
        elif isinstance(state, KeyedState):
            tables.append(state)
        else:
            raise TypeError(
                f"saveable_state takes StatefulRNNs, RNNStates, KeyedRNNs or KeyedStates; got {type(rnn).__name__}."
            )
    if not rnns:
        graph = graph or tf.compat.v1.get_default_graph()
        return graph.get_collection(STATE_VARIABLES) + saveables(graph=graph)
    graph = graph or (states[0].step.graph if states else tf.compat.v1.get_default_graph())
    prefixes = tuple(f"{state.name}/" for state in states)
    variables = [
        variable
        for variable in graph.get_collection(STATE_VARIABLES)
        if prefixes and variable.op.name.startswith(prefixes)
    ]
    return variables + (saveables(*tables) if tables else [])


def snapshot_path(checkpoint_path: str) -> str:
    """Where the state snapshot of a checkpoint lives: `<checkpoint prefix>.tfstate.npz`."""
    return f"{checkpoint_path}{SNAPSHOT_SUFFIX}"


def save_snapshot(sess: tf.compat.v1.Session, rnns: Sequence[StatefulRNN], checkpoint_path: str) -> None:
    """Writes the state of `rnns` to `checkpoint_path`'s snapshot, atomically (`StatefulSession.save_state`'s file).

    Write it before the checkpoint (`saver.save(sess, prefix, global_step=step)` after
    `save_snapshot(sess, rnns, f"{prefix}-{step}")`): the checkpoint index then never names a
    checkpoint whose snapshot is not written yet.
    """
    StatefulSession(sess, *rnns).save_state(snapshot_path(checkpoint_path))


def restore_snapshot(sess: tf.compat.v1.Session, rnns: Sequence[StatefulRNN], checkpoint_path: str) -> None:
    """Sets the state of `rnns` from `checkpoint_path`'s snapshot; the file is checked whole before anything is set.

    Raises:
      StateFileError (a ValueError): the snapshot is missing, damaged, or of another model (other
        state names or shapes); the message names the checkpoint, and no state is changed.
    """
    path = snapshot_path(checkpoint_path)
    if not os.path.exists(path):
        raise StateFileError(
            f"Checkpoint '{checkpoint_path}' has no state snapshot ('{path}' does not exist): it was saved "
            "without the state (a CheckpointSaverHook without StateHook's listener, or a plain Saver), or the "
            "snapshot was deleted. Restore a checkpoint that has one, or start the streams fresh "
            "(StateHook(..., missing_snapshot='fresh_start'))."
        )
    try:
        StatefulSession(sess, *rnns).load_state(path)
    except StateFileError as error:
        raise StateFileError(
            f"The state snapshot of checkpoint '{checkpoint_path}' cannot be restored: {error}"
        ) from None


def prune_snapshots(checkpoint_dir: str, checkpoint_basename: str = "model.ckpt") -> None:
    """Deletes the snapshots of checkpoints that the Saver has deleted (its `max_to_keep`)."""
    state = tf.train.get_checkpoint_state(checkpoint_dir)
    kept = {os.path.realpath(snapshot_path(path)) for path in (state.all_model_checkpoint_paths if state else [])}
    pattern = os.path.join(glob.escape(checkpoint_dir), f"{glob.escape(checkpoint_basename)}-*{SNAPSHOT_SUFFIX}")
    for path in glob.glob(pattern):
        if os.path.realpath(path) not in kept:
            os.remove(path)
