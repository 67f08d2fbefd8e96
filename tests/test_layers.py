"""tfstate.layers against tf_keras's legacy tf.layers.dense and a NumPy derivation of fully_connected."""

import numpy as np
import pytest
import tensorflow as tf
from tf_keras.src.legacy_tf_layers import core as legacy_layers

import tfstate
from conftest import assert_nested_close, graph_session, load_variables, randomize_variables


def _three_dense_calls(dense, x):
    first = dense(x, 4, activation=tf.nn.tanh)
    second = dense(first, 3)
    shared = dense(x, 4, activation=tf.nn.tanh, name="dense", reuse=True)
    named = dense(tf.reshape(x, [2, 3, 5]), 2, name="head", use_bias=False)
    return first, second, shared, named


def test_dense_matches_tf1_layers_dense_names_reuse_and_values(rng):
    inputs = rng.randn(6, 5).astype(np.float32)
    with graph_session() as sess:
        expected = _three_dense_calls(legacy_layers.dense, tf.constant(inputs))
        names = [v.name for v in tf.compat.v1.global_variables()]
        sess.run(tf.compat.v1.global_variables_initializer())
        weights = randomize_variables(sess)
        expected = sess.run(expected)
    with graph_session() as sess:
        actual = _three_dense_calls(tfstate.layers.dense, tf.constant(inputs))
        assert [v.name for v in tf.compat.v1.global_variables()] == names
        sess.run(tf.compat.v1.global_variables_initializer())
        load_variables(sess, weights)
        actual = sess.run(actual)
    assert names == ["dense/kernel:0", "dense/bias:0", "dense_1/kernel:0", "dense_1/bias:0", "head/kernel:0"]
    assert_nested_close(actual, expected)
    np.testing.assert_array_equal(actual[0], actual[2])


def test_fully_connected_has_tf1_contrib_names_relu_default_and_maths(rng):
    inputs = rng.randn(6, 5)
    with graph_session() as sess:
        x = tf.constant(inputs)
        relu = tfstate.layers.fully_connected(x, 4)
        linear = tfstate.layers.fully_connected(x, 3, activation_fn=None)
        shared = tfstate.layers.fully_connected(x, 4, scope="fully_connected", reuse=True)
        names = [v.op.name for v in tf.compat.v1.global_variables()]
        model_variables = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.MODEL_VARIABLES)
        sess.run(tf.compat.v1.global_variables_initializer())
        w = randomize_variables(sess)
        relu, linear, shared = sess.run([relu, linear, shared])
    assert names == ["fully_connected/weights", "fully_connected/biases",
                     "fully_connected_1/weights", "fully_connected_1/biases"]
    assert len(model_variables) == 4
    np.testing.assert_allclose(
        relu, np.maximum(inputs @ w["fully_connected/weights:0"] + w["fully_connected/biases:0"], 0), atol=1e-12)
    np.testing.assert_allclose(
        linear, inputs @ w["fully_connected_1/weights:0"] + w["fully_connected_1/biases:0"], atol=1e-12)
    np.testing.assert_array_equal(shared, relu)


def test_dense_needs_a_known_input_depth():
    with graph_session():
        with pytest.raises(ValueError, match=r"known last dimension; got shape \(None, None\)"):
            tfstate.layers.dense(tf.compat.v1.placeholder(tf.float32, [None, None]), 3)


def test_layers_refuse_eager_mode_with_the_fix():
    with pytest.raises(RuntimeError, match="fully_connected builds a TF1 .*disable_eager_execution"):
        tfstate.layers.fully_connected(tf.ones([2, 2]), 3)
