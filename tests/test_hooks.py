"""StateHook under MonitoredSession / MonitoredTrainingSession: keep, resets, failed runs, checkpoints and snapshots.

The oracle is the same cell (same weights) run by `tf.compat.v1.nn.dynamic_rnn` over the stream
from zeros, without kept state: chunks carried by the hook must equal that one long run.
"""

import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import tfstate
from tfstate.checkpoint import snapshot_path

BATCH, CHUNK, FEATURES, UNITS = 2, 3, 2, 4
TOL = dict(atol=1e-6, rtol=0)


def _stream(chunks, seed=0):
    return np.random.RandomState(seed).randn(BATCH, CHUNK * chunks, FEATURES).astype(np.float32)


def _chunk(stream, index):
    return stream[:, index * CHUNK : (index + 1) * CHUNK]


class Model:
    """A stateful LSTM, its no-state oracle over the same weights, and a global step each run advances."""

    def __init__(self, units=UNITS, name="rnn_state", check_numerics=False, first_step=0):
        tf.compat.v1.set_random_seed(0)
        self.x = tf.compat.v1.placeholder(tf.float32, [None, None, FEATURES], name="x")
        cell = tfstate.LSTMCell(units)
        self.rnn = tfstate.stateful_dynamic_rnn(cell, self.x, name=name)
        self.oracle, _ = tf.compat.v1.nn.dynamic_rnn(cell, self.x, dtype=tf.float32, scope="oracle")
        self.global_step = tf.compat.v1.get_variable(
            "global_step",
            [],
            tf.int64,
            tf.compat.v1.constant_initializer(first_step),
            trainable=False,
            collections=[tf.compat.v1.GraphKeys.GLOBAL_VARIABLES, tf.compat.v1.GraphKeys.GLOBAL_STEP],
        )
        outputs = self.rnn.outputs
        if check_numerics:
            outputs = tf.debugging.check_numerics(outputs, "outputs")
        self.step = (outputs, self.global_step.assign_add(1))

    def run(self, sess, chunk, feed=None):
        return sess.run(self.step, {self.x: chunk, **(feed or {})})[0]

    def raw(self, sess, fetches, feed=None):
        """A run without hooks (as every run through the MonitoredSession carries the state)."""
        return sess.run_step_fn(lambda step_context: step_context.session.run(fetches, feed))


def _session(hooks, checkpoint_dir=None, chief_only_hooks=None, scaffold=None):
    return tf.compat.v1.train.MonitoredTrainingSession(
        checkpoint_dir=checkpoint_dir,
        hooks=hooks,
        chief_only_hooks=chief_only_hooks,
        scaffold=scaffold,
        save_checkpoint_secs=None,
        save_checkpoint_steps=None,
        save_summaries_steps=None,
        save_summaries_secs=None,
        log_step_count_steps=None,
    )


def _saver_hook(checkpoint_dir, state_hook, save_steps=2, scaffold=None):
    return tf.compat.v1.train.CheckpointSaverHook(
        checkpoint_dir, save_steps=save_steps, scaffold=scaffold, listeners=[state_hook.listener()]
    )


def test_state_hook_carries_the_state_like_one_long_run_on_a_finalized_graph():
    stream = _stream(4)
    with tf.Graph().as_default() as graph:
        model = Model()
        with _session([tfstate.StateHook(model.rnn)]) as sess:
            assert graph.finalized
            ops = len(graph.get_operations())
            chunks = [model.run(sess, _chunk(stream, i)) for i in range(4)]
            whole = model.raw(sess, model.oracle, {model.x: stream})
            assert len(graph.get_operations()) == ops
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), whole, **TOL)


def test_a_run_that_raises_leaves_the_state_as_it_was():
    stream = _stream(3)
    poisoned = _chunk(stream, 1).copy()
    poisoned[0, 1, 0] = np.nan
    with tf.Graph().as_default():
        model = Model(check_numerics=True)
        with _session([tfstate.StateHook(model.rnn)]) as sess:
            first = model.run(sess, _chunk(stream, 0))
            before = model.raw(sess, model.rnn.state.variables)
            with pytest.raises(tf.errors.InvalidArgumentError, match="outputs"):
                model.run(sess, poisoned)
            after = model.raw(sess, model.rnn.state.variables)
            rest = [model.run(sess, _chunk(stream, i)) for i in (1, 2)]
            whole = model.raw(sess, model.oracle, {model.x: stream})
    for part_before, part_after in zip(tf.nest.flatten(before), tf.nest.flatten(after)):
        np.testing.assert_array_equal(part_before, part_after)
    np.testing.assert_allclose(np.concatenate([first] + rest, axis=1), whole, **TOL)


def test_reset_schedule_starts_the_runs_counted_from_the_global_step_at_multiples_of_n():
    stream = _stream(5)
    with tf.Graph().as_default():
        model = Model(first_step=3)
        with _session([tfstate.StateHook(model.rnn, reset_every_n_steps=2)]) as sess:
            outputs = [model.run(sess, _chunk(stream, i)) for i in range(5)]  # counted 3, 4, 5, 6, 7
            pieces = [
                model.raw(sess, model.oracle, {model.x: stream[:, start * CHUNK : end * CHUNK]})
                for start, end in [(1, 3), (3, 5)]
            ]
    np.testing.assert_allclose(np.concatenate(outputs[1:3], axis=1), pieces[0], **TOL)  # 4 resets, 5 carries
    np.testing.assert_allclose(np.concatenate(outputs[3:5], axis=1), pieces[1], **TOL)  # 6 resets, 7 carries


def test_a_run_that_feeds_the_step_flag_itself_is_left_alone():
    stream = _stream(3)
    with tf.Graph().as_default():
        model = Model()
        with _session([tfstate.StateHook(model.rnn, reset_every_n_steps=2)]) as sess:
            model.run(sess, _chunk(stream, 0))
            restarted = model.run(sess, _chunk(stream, 1), {model.rnn.step: 0})  # counted 1: the feed resets
            carried = model.run(sess, _chunk(stream, 2), {model.rnn.step: -1})  # counted 2: the feed carries
            fresh = model.raw(sess, model.oracle, {model.x: stream[:, CHUNK:]})
    np.testing.assert_allclose(np.concatenate([restarted, carried], axis=1), fresh, **TOL)


def _train(folder, stream, first_chunk, last_step, max_to_keep=5, **hook_options):
    """Runs `stream` from chunk `first_chunk` in a new graph until global step `last_step`, checkpointing every 2 steps.

    The session restores the latest checkpoint in `folder`, with a Scaffold whose Saver keeps
    `max_to_keep` checkpoints. Returns the chunks' outputs and the oracle over the whole stream.
    """
    with tf.Graph().as_default():
        model = Model()
        hook = tfstate.StateHook(model.rnn, checkpoint_dir=str(folder), **hook_options)
        scaffold = tf.compat.v1.train.Scaffold(
            saver=tf.compat.v1.train.Saver(max_to_keep=max_to_keep, save_relative_paths=True)
        )
        hooks = [
            hook,
            _saver_hook(str(folder), hook, scaffold=scaffold),
            tf.compat.v1.train.StopAtStepHook(last_step=last_step),
        ]
        outputs = []
        with _session(hooks, checkpoint_dir=str(folder), scaffold=scaffold) as sess:
            while not sess.should_stop():
                outputs.append(model.run(sess, _chunk(stream, first_chunk + len(outputs))))
            whole = model.raw(sess, model.oracle, {model.x: stream})
    return outputs, whole


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(folder, stream, outputs): 3 chunks run, checkpoints at global steps 0, 2 and 3 by a Saver keeping 2."""
    folder = tmp_path_factory.mktemp("trained")
    stream = _stream(6)
    outputs, _ = _train(folder, stream, 0, last_step=3, max_to_keep=2)
    return folder, stream, outputs


@pytest.fixture
def checkpoints(trained, tmp_path):
    """A copy of the trained folder (its Saver writes relative paths) for one test to change."""
    folder, stream, outputs = trained
    copy = tmp_path / "checkpoints"
    shutil.copytree(folder, copy)
    return copy, stream, outputs


def test_a_restarted_session_continues_from_the_snapshot_of_the_restored_checkpoint(checkpoints):
    folder, stream, first = checkpoints
    assert len(first) == 3  # StopAtStepHook stopped at global step 3
    snapshots = sorted(path.name for path in folder.glob("*.tfstate.npz"))
    assert snapshots == ["model.ckpt-2.tfstate.npz", "model.ckpt-3.tfstate.npz"]  # ckpt-0's went with it
    rest, whole = _train(folder, stream, 3, last_step=6)
    assert len(rest) == 3
    np.testing.assert_allclose(np.concatenate(first + rest, axis=1), whole, **TOL)


def test_a_checkpoint_without_its_snapshot_raises_naming_it_and_the_fix(checkpoints):
    folder, stream, _ = checkpoints
    os.remove(snapshot_path(str(folder / "model.ckpt-3")))
    with pytest.raises(ValueError, match=r"model\.ckpt-3' has no state snapshot.*missing_snapshot='fresh_start'"):
        _train(folder, stream, 3, last_step=4)


def test_missing_snapshot_fresh_start_starts_the_streams_from_the_reset_value(checkpoints, caplog):
    folder, stream, _ = checkpoints
    os.remove(snapshot_path(str(folder / "model.ckpt-3")))
    with caplog.at_level(logging.WARNING, logger="tfstate"):
        (continued,), whole = _train(folder, stream, 3, last_step=4, missing_snapshot="fresh_start")
    assert "has no state snapshot" in caplog.text
    with tf.Graph().as_default():  # the oracle from zeros over chunk 3 alone, with the restored weights
        model = Model()
        with _session([], checkpoint_dir=str(folder)) as sess:
            fresh = sess.run(model.oracle, {model.x: _chunk(stream, 3)})
    np.testing.assert_allclose(continued, fresh, **TOL)
    assert not np.allclose(continued, _chunk(whole, 3), **TOL)  # a carried state would have given this


def test_a_truncated_snapshot_raises(checkpoints):
    folder, stream, _ = checkpoints
    path = snapshot_path(str(folder / "model.ckpt-3"))
    data = open(path, "rb").read()
    with open(path, "wb") as file:
        file.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"snapshot of checkpoint '.*model\.ckpt-3' cannot be restored"):
        _train(folder, stream, 3, last_step=4)


def test_a_snapshot_of_another_model_raises_naming_the_part(checkpoints):
    folder, stream, _ = checkpoints
    with tf.Graph().as_default():
        other = Model(units=UNITS + 1)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tfstate.StatefulSession(sess, other.rnn).save_state(snapshot_path(str(folder / "model.ckpt-3")))
    with pytest.raises(
        ValueError, match=r"cannot be restored.*'rnn_state/c' must be a float array of shape \[rows, 4\]"
    ):
        _train(folder, stream, 3, last_step=4)


def test_a_session_that_did_not_restore_the_checkpoint_raises(checkpoints):
    folder, stream, _ = checkpoints
    with tf.Graph().as_default():
        model = Model()
        hook = tfstate.StateHook(model.rnn, checkpoint_dir=str(folder))
        with pytest.raises(RuntimeError, match=r"global step is 0, but the latest checkpoint .*\(global step 3\)"):
            _session([hook])  # no checkpoint_dir: the session starts fresh


def test_a_checkpoint_saver_hook_before_the_state_hook_raises(tmp_path):
    with tf.Graph().as_default():
        model = Model()
        hook = tfstate.StateHook(model.rnn, checkpoint_dir=str(tmp_path))
        with pytest.raises(RuntimeError, match="put the StateHook before the CheckpointSaverHook"):
            _session([hook], checkpoint_dir=str(tmp_path), chief_only_hooks=[_saver_hook(str(tmp_path), hook)])


@pytest.mark.parametrize("state_folder_exists", [False, True])
def test_a_checkpoint_saver_hook_on_another_folder_raises(tmp_path, state_folder_exists):
    if state_folder_exists:
        (tmp_path / "state").mkdir()
    with tf.Graph().as_default():
        model = Model()
        hook = tfstate.StateHook(model.rnn, checkpoint_dir=str(tmp_path / "state"))
        saver_hook = tf.compat.v1.train.CheckpointSaverHook(
            str(tmp_path / "weights"), save_steps=2, listeners=[hook.listener()]
        )
        with pytest.raises(ValueError, match="give the StateHook the CheckpointSaverHook's checkpoint_dir"):
            _session([hook, saver_hook])


def test_fetching_a_keep_op_through_the_hooked_session_raises():
    with tf.Graph().as_default():
        model = Model()
        with _session([tfstate.StateHook(model.rnn)]) as sess:
            with pytest.raises(ValueError, match="keeps the state itself"):
                sess.run([model.rnn.outputs, model.rnn.keep], {model.x: _stream(1)})


@pytest.mark.parametrize(
    "make_rnns, options, message",
    [
        (lambda model: "rnn", {}, r"takes a StatefulRNN .*; got str"),
        (lambda model: [model.rnn.state], {}, r"takes a StatefulRNN .*; got list of \['RNNState'\]"),
        (
            lambda model: [model.rnn, model.rnn],
            {},
            r"got the same StatefulRNN twice \(state names \['rnn_state', 'rnn_state'\]\)",
        ),
        (
            lambda model: model.rnn,
            dict(reset_every_n_steps=0),
            r"reset_every_n_steps must be a positive int or None; got 0",
        ),
        (lambda model: model.rnn, dict(reset_every_n_steps=True), r"reset_every_n_steps .*; got True"),
        (
            lambda model: model.rnn,
            dict(missing_snapshot="zeros"),
            r"missing_snapshot must be one of \('error', 'fresh_start'\); got 'zeros'",
        ),
    ],
)
def test_bad_state_hook_arguments_raise_naming_expected_and_given(make_rnns, options, message):
    with tf.Graph().as_default():
        model = Model()
        with pytest.raises((TypeError, ValueError), match=message):
            tfstate.StateHook(make_rnns(model), **options)


def test_a_listener_needs_the_checkpoint_dir_and_begin_needs_graph_mode():
    with tf.Graph().as_default():
        hook = tfstate.StateHook(Model().rnn)
        with pytest.raises(ValueError, match=r"listener\(\) needs the hook's checkpoint_dir"):
            hook.listener()
    assert tf.executing_eagerly()
    with pytest.raises(RuntimeError, match=r"StateHook builds a TF1 \(session\) graph.*disable_eager_execution"):
        hook.begin()
