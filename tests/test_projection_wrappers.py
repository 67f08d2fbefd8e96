"""EmbeddingWrapper, InputProjectionWrapper, OutputProjectionWrapper against NumPy, with TF1's variable names."""

import math

import numpy as np
import pytest
import tensorflow as tf
from conftest import graph_session, randomize_variables

import tfstate

R = tfstate.rnn_cell
BATCH, STEPS = 3, 4


def _numpy_basic_rnn(values, prefix, inputs, state, activation=np.tanh):
    outputs = []
    for x in inputs:
        state = activation(np.concatenate([x, state], 1) @ values[prefix + "/kernel:0"] + values[prefix + "/bias:0"])
        outputs.append(state)
    return outputs, state


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_embedding_wrapper_runs_the_cell_on_the_embedded_symbols(rng, dtype):
    ids = rng.randint(5, size=(STEPS, BATCH)).astype(np.int32)
    with graph_session() as sess:
        outputs, state = tf.compat.v1.nn.static_rnn(
            R.EmbeddingWrapper(R.BasicRNNCell(3), 5, 2), [tf.constant(step) for step in ids], dtype=dtype
        )
        variables = tf.compat.v1.global_variables()
        assert [(v.op.name, v.shape.as_list(), v.dtype.base_dtype) for v in variables] == [
            ("rnn/embedding_wrapper/embedding", [5, 2], dtype),
            ("rnn/embedding_wrapper/basic_rnn_cell/kernel", [5, 3], dtype),
            ("rnn/embedding_wrapper/basic_rnn_cell/bias", [3], dtype),
        ]
        values = randomize_variables(sess)
        outputs, state = sess.run((outputs, state))
    embedding = values["rnn/embedding_wrapper/embedding:0"]
    expected, expected_state = _numpy_basic_rnn(
        values, "rnn/embedding_wrapper/basic_rnn_cell", [embedding[step] for step in ids], np.zeros((BATCH, 3))
    )
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    np.testing.assert_allclose(state, expected_state, atol=1e-5)


def test_output_projection_wrapper_projects_the_cell_output_and_keeps_its_state(rng):
    inputs = rng.randn(STEPS, BATCH, 2).astype(np.float32)
    with graph_session() as sess:
        cell = R.OutputProjectionWrapper(R.BasicRNNCell(3), 6, activation=tf.nn.relu)
        outputs, state = tf.compat.v1.nn.static_rnn(cell, [tf.constant(x) for x in inputs], dtype=tf.float32)
        assert cell.output_size == 6 and cell.state_size == 3
        assert [v.op.name for v in cell.variables] == [  # TF1's order: the cell's weights, then the projection
            "rnn/output_projection_wrapper/basic_rnn_cell/kernel",
            "rnn/output_projection_wrapper/basic_rnn_cell/bias",
            "rnn/output_projection_wrapper/kernel",
            "rnn/output_projection_wrapper/bias",
        ]
        values = randomize_variables(sess)
        outputs, state = sess.run((outputs, state))
    hidden, expected_state = _numpy_basic_rnn(
        values, "rnn/output_projection_wrapper/basic_rnn_cell", inputs, np.zeros((BATCH, 3))
    )
    kernel, bias = values["rnn/output_projection_wrapper/kernel:0"], values["rnn/output_projection_wrapper/bias:0"]
    np.testing.assert_allclose(outputs, [np.maximum(h @ kernel + bias, 0) for h in hidden], atol=1e-5)
    np.testing.assert_allclose(state, expected_state, atol=1e-5)


def test_input_projection_wrapper_projects_the_inputs_before_the_cell(rng):
    inputs = rng.randn(STEPS, BATCH, 2).astype(np.float32)
    with graph_session() as sess:
        cell = R.InputProjectionWrapper(R.BasicRNNCell(3), 5, activation=tf.tanh)
        outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, tf.constant(inputs.transpose(1, 0, 2)), dtype=tf.float32)
        assert [v.op.name for v in cell.variables] == [
            "rnn/input_projection_wrapper/kernel",
            "rnn/input_projection_wrapper/bias",
            "rnn/input_projection_wrapper/basic_rnn_cell/kernel",
            "rnn/input_projection_wrapper/basic_rnn_cell/bias",
        ]
        values = randomize_variables(sess)
        outputs = sess.run(outputs)
    kernel, bias = values["rnn/input_projection_wrapper/kernel:0"], values["rnn/input_projection_wrapper/bias:0"]
    expected, _ = _numpy_basic_rnn(
        values,
        "rnn/input_projection_wrapper/basic_rnn_cell",
        [np.tanh(x @ kernel + bias) for x in inputs],
        np.zeros((BATCH, 3)),
    )
    np.testing.assert_allclose(outputs.transpose(1, 0, 2), expected, atol=1e-5)


def test_embedding_initializer_is_given_else_the_scopes_else_unit_variance_uniform():
    def embedding_values(initializer=None, scope_initializer=None):
        with graph_session() as sess:
            with tf.compat.v1.variable_scope("model", initializer=scope_initializer):
                cell = R.EmbeddingWrapper(R.GRUCell(2), 400, 50, initializer=initializer)
                cell(tf.zeros([1], tf.int32), tf.zeros([1, 2]))
            sess.run(tf.compat.v1.global_variables_initializer())
            return sess.run(cell.variables[0])

    default = embedding_values()
    assert default.shape == (400, 50)
    assert np.abs(default).max() <= math.sqrt(3) and abs(default.std() - 1) < 0.02
    np.testing.assert_array_equal(embedding_values(scope_initializer=tf.compat.v1.constant_initializer(0.5)), 0.5)
    np.testing.assert_array_equal(
        embedding_values(tf.compat.v1.constant_initializer(2.0), tf.compat.v1.constant_initializer(0.5)), 2.0
    )


def test_wrapper_variables_include_a_cell_built_before_it_was_wrapped():
    with graph_session():
        inner = R.GRUCell(2)
        inner(tf.zeros([1, 2]), tf.zeros([1, 2]))
        wrapper = R.OutputProjectionWrapper(inner, 4)
        assert not wrapper.built
        wrapper(tf.zeros([1, 2]), tf.zeros([1, 2]))
        assert wrapper.built
        assert [v.op.name for v in wrapper.variables] == [
            "output_projection_wrapper/kernel",
            "output_projection_wrapper/bias",
            "gru_cell/gates/kernel",
            "gru_cell/gates/bias",
            "gru_cell/candidate/kernel",
            "gru_cell/candidate/bias",
        ]


def test_wrappers_name_what_is_wrong_with_their_arguments():
    with pytest.raises(ValueError, match="embedding_classes > 0 and embedding_size > 0; got embedding_classes=0"):
        R.EmbeddingWrapper(R.GRUCell(2), 0, 3)
    with pytest.raises(ValueError, match="output_size >= 1; got 0"):
        R.OutputProjectionWrapper(R.GRUCell(2), 0)
    with pytest.raises(TypeError, match="wraps an RNN cell"):
        R.InputProjectionWrapper("not a cell", 3)
    with graph_session():
        cell = R.EmbeddingWrapper(R.GRUCell(2), 4, 3)
        with pytest.raises(ValueError, match="integer symbol ids; got inputs of dtype float32"):
            cell(tf.zeros([1, 3]), tf.zeros([1, 2]))
        assert not cell.built
        cell(tf.zeros([1], tf.int32), tf.zeros([1, 2]))
        assert [v.op.name for v in cell.variables][:1] == ["embedding_wrapper/embedding"]
