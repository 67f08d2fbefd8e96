"""State and checkpoints with a plain Saver: left out by default, in the checkpoint with saveable_state, or beside it.

The oracle is the same cell run by `tf.compat.v1.nn.dynamic_rnn` over the whole stream from
zeros: a stream saved half-way and restored in a new graph must continue exactly as that run.
"""

import numpy as np
import pytest
import tensorflow as tf
from conftest import graph_session

import tfstate
from tfstate.checkpoint import restore_snapshot, save_snapshot, snapshot_path

BATCH, CHUNK, FEATURES, UNITS = 2, 3, 2, 4
TOL = dict(atol=1e-6, rtol=0)
STREAM = np.random.RandomState(0).randn(BATCH, 4 * CHUNK, FEATURES).astype(np.float32)


def _model(name="rnn_state"):
    x = tf.compat.v1.placeholder(tf.float32, [None, None, FEATURES], name="x")
    cell = tfstate.LSTMCell(UNITS)
    rnn = tfstate.stateful_dynamic_rnn(cell, x, name=name)
    oracle, _ = tf.compat.v1.nn.dynamic_rnn(cell, x, dtype=tf.float32, scope="oracle")
    return x, rnn, oracle


def _run_chunks(sess, x, rnn, chunks):
    stateful = tfstate.StatefulSession(sess, rnn)
    return [stateful.run(rnn.outputs, {x: STREAM[:, i * CHUNK : (i + 1) * CHUNK]}) for i in chunks]


def _first_half(path, make_saver):
    """Runs chunks 0 and 1 in a new graph and saves with `make_saver()`; returns their outputs."""
    with graph_session() as sess:
        x, rnn, _ = _model()
        saver = make_saver()
        sess.run(tf.compat.v1.global_variables_initializer())
        outputs = _run_chunks(sess, x, rnn, [0, 1])
        saver.save(sess, path)
    return outputs


def _second_half(path, make_saver, oracle_input=STREAM):
    """Restores `path` in a new graph, runs chunks 2 and 3; returns their outputs and the oracle on `oracle_input`."""
    with graph_session() as sess:
        x, rnn, oracle = _model()
        saver = make_saver()
        sess.run([tf.compat.v1.global_variables_initializer(), tf.compat.v1.local_variables_initializer()])
        saver.restore(sess, path)
        return _run_chunks(sess, x, rnn, [2, 3]), sess.run(oracle, {x: oracle_input})


def _with_state():
    return tf.compat.v1.train.Saver(tf.compat.v1.global_variables() + tfstate.saveable_state())


def test_a_default_saver_leaves_the_state_out_and_saveable_state_puts_it_in(tmp_path):
    _first_half(str(tmp_path / "weights"), tf.compat.v1.train.Saver)
    _first_half(str(tmp_path / "both"), _with_state)
    weights = {name for name, _ in tf.train.list_variables(str(tmp_path / "weights"))}
    both = {name for name, _ in tf.train.list_variables(str(tmp_path / "both"))}
    assert weights == {"rnn/lstm_cell/kernel", "rnn/lstm_cell/bias"}
    assert both - weights == {"rnn_state/c", "rnn_state/h", "rnn_state/writes", "rnn_state/rows"}


def test_a_state_saved_with_saveable_state_continues_the_stream_after_restore(tmp_path):
    path = str(tmp_path / "model.ckpt")
    first = _first_half(path, _with_state)
    rest, whole = _second_half(path, _with_state)
    np.testing.assert_allclose(np.concatenate(first + rest, axis=1), whole, **TOL)


def test_restoring_weights_only_restarts_the_stream(tmp_path):
    path = str(tmp_path / "model.ckpt")
    _first_half(path, tf.compat.v1.train.Saver)
    rest, fresh = _second_half(path, tf.compat.v1.train.Saver, oracle_input=STREAM[:, 2 * CHUNK :])
    np.testing.assert_allclose(np.concatenate(rest, axis=1), fresh, **TOL)


def test_saveable_state_of_given_rnns_selects_their_state_only():
    with tf.Graph().as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, None, FEATURES])
        encoder = tfstate.stateful_dynamic_rnn(tfstate.GRUCell(3), x, batch_size=2, name="encoder", scope="enc")
        decoder = tfstate.stateful_dynamic_rnn(tfstate.LSTMCell(3), x, name="decoder", scope="dec")
        assert [v.op.name for v in tfstate.saveable_state(decoder)] == [
            "decoder/c",
            "decoder/h",
            "decoder/writes",
            "decoder/rows",
        ]
        assert [v.op.name for v in tfstate.saveable_state(encoder.state)] == ["encoder/state", "encoder/writes"]
        assert len(tfstate.saveable_state()) == 6
        with pytest.raises(
            TypeError,
            match="saveable_state takes StatefulRNNs, RNNStates, KeyedRNNs or KeyedStates; got SymbolicTensor",
        ):
            tfstate.saveable_state(x)


def test_a_snapshot_written_before_the_checkpoint_restores_the_state_beside_it(tmp_path):
    prefix = str(tmp_path / "model.ckpt")
    with graph_session() as sess:
        x, rnn, _ = _model()
        saver = tf.compat.v1.train.Saver()
        sess.run(tf.compat.v1.global_variables_initializer())
        first = _run_chunks(sess, x, rnn, [0, 1])
        save_snapshot(sess, [rnn], f"{prefix}-2")
        checkpoint = saver.save(sess, prefix, global_step=2)
    assert snapshot_path(checkpoint) == f"{prefix}-2.tfstate.npz"
    with graph_session() as sess:
        x, rnn, oracle = _model()
        saver = tf.compat.v1.train.Saver()
        saver.restore(sess, checkpoint)
        tfstate.StatefulSession(sess, rnn)
        restore_snapshot(sess, [rnn], checkpoint)
        rest = _run_chunks(sess, x, rnn, [2, 3])
        whole = sess.run(oracle, {x: STREAM})
    np.testing.assert_allclose(np.concatenate(first + rest, axis=1), whole, **TOL)
