"""`copy.deepcopy(cell)` (TF1's legacy_seq2seq copies the decoder's cell for the encoder): an unbuilt cell with
the same configuration, which makes weights of its own and computes what the original does with equal weights."""

import copy
import functools

import numpy as np
import pytest
import tensorflow as tf
from conftest import CELLS, graph_session
from test_cells import _tf1_style_cells

import tfstate

R = tfstate.rnn_cell
BATCH, STEPS, DEPTH = 2, 3, 4


KINDS = {
    name: functools.partial(CELLS[name], R)
    for name in (
        "gru",
        "lstm_peepholes_clip",
        "lstm_projection_concat_state",
        "basic_lstm_concat_state",
        "multi",
        "residual",
    )
}
KINDS.update(
    {
        "lstm_block": lambda: R.LSTMBlockCell(3, cell_clip=0.4),
        "lstm_block_fused": lambda: R.LSTMBlockFusedCell(3),
        "gru_block_v2": lambda: R.GRUBlockCellV2(3),
        "gru_block_old_names": lambda: R.GRUBlockCell(3),
        "fused_multi": lambda: R.FusedMultiRNNCell([R.LSTMBlockCell(3), R.LSTMBlockCell(2)]),
        "residual_device": lambda: R.DeviceWrapper(R.ResidualWrapper(R.GRUCell(DEPTH)), "/cpu:0"),
        "output_projection": lambda: R.OutputProjectionWrapper(R.GRUCell(3), 5),
        "input_projection": lambda: R.InputProjectionWrapper(R.LSTMCell(3), 2),
        "tf1_style_build": lambda: _tf1_style_cells(R.RNNCell)[0](3),  # weights made in build(), kept as attributes
        "tf1_style_get_variable": lambda: _tf1_style_cells(R.RNNCell)[1](),  # weights got in call()
    }
)


def _run(cell, inputs, scope):
    outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, inputs, dtype=tf.float32, scope=scope)
    return outputs


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_deep_copy_of_a_built_cell_makes_its_own_weights_and_computes_the_same(rng, kind):
    with graph_session() as sess:
        inputs = tf.constant(rng.randn(BATCH, STEPS, DEPTH).astype(np.float32))
        cell = KINDS[kind]()
        original = _run(cell, inputs, "original")
        weights = cell.variables
        clone = copy.deepcopy(cell)
        assert not clone.built and clone.variables == []
        copied = _run(clone, inputs, "copy")
        assert cell.variables == weights
        assert [v.op.name for v in clone.variables] == [v.op.name.replace("original/", "copy/", 1) for v in weights]
        assert not {id(v) for v in weights} & {id(v) for v in clone.variables}
        sess.run(tf.compat.v1.global_variables_initializer())
        for source, target in zip(weights, clone.variables):
            target.load(sess.run(source), sess)
        np.testing.assert_allclose(*sess.run((copied, original)), atol=1e-6)


def test_deep_copy_keeps_a_cell_repeated_in_a_stack_one_cell():
    with graph_session():
        layer = R.GRUCell(DEPTH)
        with pytest.warns(UserWarning, match="same object and will share weights"):
            stack = R.MultiRNNCell([layer, layer])
        _run(stack, tf.zeros([BATCH, STEPS, DEPTH]), "original")
        clone = copy.deepcopy(stack)
        first, second = clone.cells
        assert first is second and first is not layer
        _run(clone, tf.zeros([BATCH, STEPS, DEPTH]), "copy")
        assert len(clone.variables) == len(stack.variables) == 4


def test_deep_copy_shares_a_keep_probability_placeholder(rng):
    with graph_session() as sess:
        inputs = tf.constant(rng.randn(BATCH, STEPS, DEPTH).astype(np.float32))
        keep = tf.compat.v1.placeholder_with_default(1.0, [])
        cell = R.DropoutWrapper(R.GRUCell(3), output_keep_prob=keep, seed=7)
        steps = tf.unstack(inputs, axis=1)  # a static unroll: dropout ops outside loops, seeded alike
        original, _ = tf.compat.v1.nn.static_rnn(cell, steps, dtype=tf.float32, scope="original")
        clone = copy.deepcopy(cell)
        copied, _ = tf.compat.v1.nn.static_rnn(clone, steps, dtype=tf.float32, scope="copy")
        sess.run(tf.compat.v1.global_variables_initializer())
        for source, target in zip(cell.variables, clone.variables):
            target.load(sess.run(source), sess)
        # same seed, same number of runs so far: feeding the original's placeholder drops the same units in both
        dropped, expected = sess.run((copied, original), {keep: 0.25})
        np.testing.assert_allclose(dropped, expected, atol=1e-6)
        assert np.mean(np.array(dropped) == 0) > 0.2 and not np.any(np.array(sess.run(copied)) == 0)


def test_deep_copy_of_an_unbuilt_cell_is_an_independent_cell():
    with graph_session():
        cell = R.LSTMCell(3, num_proj=2)
        clone = copy.deepcopy(cell)
        _run(cell, tf.zeros([BATCH, STEPS, DEPTH]), "original")
        assert not clone.built
        _run(clone, tf.zeros([BATCH, STEPS, DEPTH]), "copy")
        assert [v.op.name for v in clone.variables] == [
            "copy/lstm_cell/kernel",
            "copy/lstm_cell/bias",
            "copy/lstm_cell/projection/kernel",
        ]
