"""tfstate.layers against tf_keras's legacy tf.layers.dense and a NumPy derivation of fully_connected."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_nested_close, graph_session, load_variables, randomize_variables
from tf_keras.src.legacy_tf_layers import core as legacy_layers

import tfstate


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
    assert names == [
        "fully_connected/weights",
        "fully_connected/biases",
        "fully_connected_1/weights",
        "fully_connected_1/biases",
    ]
    assert len(model_variables) == 4
    np.testing.assert_allclose(
        relu, np.maximum(inputs @ w["fully_connected/weights:0"] + w["fully_connected/biases:0"], 0), atol=1e-12
    )
    np.testing.assert_allclose(
        linear, inputs @ w["fully_connected_1/weights:0"] + w["fully_connected_1/biases:0"], atol=1e-12
    )
    np.testing.assert_array_equal(shared, relu)


def test_dense_needs_a_known_input_depth():
    with graph_session():
        with pytest.raises(ValueError, match=r"known last dimension; got shape \(None, None\)"):
            tfstate.layers.dense(tf.compat.v1.placeholder(tf.float32, [None, None]), 3)


def test_layers_refuse_eager_mode_with_the_fix():
    with pytest.raises(RuntimeError, match=r"fully_connected builds a TF1 .*disable_eager_execution"):
        tfstate.layers.fully_connected(tf.ones([2, 2]), 3)


def _dense_objects(dense_class, x):
    """TF1 usage of layer objects: reuse from another scope, a while-loop first call, named and `_reuse` layers."""
    first = dense_class(4, activation=tf.nn.tanh)
    with tf.compat.v1.variable_scope("decoder"):
        inside = first(x)
    outside = first(tf.reshape(tf.concat([x, x], 0), [2, 6, 5]))
    with tf.compat.v1.variable_scope("decoder"):
        second = dense_class(3, use_bias=False)(x)
    in_loop = dense_class(2, name="output_projection")
    _, looped = tf.compat.v1.while_loop(
        lambda i, acc: i < 2, lambda i, acc: (i + 1, acc + in_loop(x)), [0, tf.zeros([6, 2])]
    )
    shared = dense_class(2, name="output_projection", _reuse=True)(x)
    named_twice = [dense_class(1, name="memory_layer")(x) for _ in range(2)]
    return inside, outside, second, looped, shared, named_twice


def test_dense_object_matches_tf1_layers_dense_names_ownership_and_values(rng):
    inputs = rng.randn(6, 5).astype(np.float32)
    with graph_session() as sess:
        expected = _dense_objects(legacy_layers.Dense, tf.constant(inputs))
        names = [v.name for v in tf.compat.v1.global_variables()]
        weights = randomize_variables(sess)
        expected = sess.run(expected)
    with graph_session() as sess:
        actual = _dense_objects(tfstate.layers.Dense, tf.constant(inputs))
        assert [v.name for v in tf.compat.v1.global_variables()] == names
        load_variables(sess, weights)
        actual = sess.run(actual)
    assert names == [
        "decoder/dense/kernel:0",
        "decoder/dense/bias:0",
        "decoder/dense_1/kernel:0",
        "output_projection/kernel:0",
        "output_projection/bias:0",
        "memory_layer/kernel:0",
        "memory_layer/bias:0",
        "memory_layer_1/kernel:0",
        "memory_layer_1/bias:0",
    ]
    assert_nested_close(actual, expected)
    np.testing.assert_allclose(actual[1].reshape(12, 4)[:6], actual[0], atol=1e-6)


def test_dense_reports_its_output_shape_and_refuses_a_different_input_depth():
    layer = tfstate.layers.Dense(7)
    assert layer.compute_output_shape([None, 3, 5]).as_list() == [None, 3, 7]
    with pytest.raises(ValueError, match=r"known last dimension; got \(None, None\)"):
        layer.compute_output_shape([None, None])
    with graph_session():
        layer(tf.zeros([2, 5]))
        assert layer.name == "dense" and [v.shape.as_list() for v in layer.variables] == [[5, 7], [7]]
        with pytest.raises(ValueError, match=r"'dense' was built for inputs of depth 5; got inputs of shape \(2, 4\)"):
            layer(tf.zeros([2, 4]))


def test_embed_sequence_has_tf1_names_collections_reuse_and_unique_lookup(rng):
    ids = rng.randint(0, 6, [3, 4])
    with graph_session() as sess:
        embedded = tfstate.layers.embed_sequence(ids, vocab_size=6, embed_dim=5)
        unique = tfstate.layers.embed_sequence(ids, scope="EmbedSequence", reuse=True, unique=True)
        named = tfstate.layers.embed_sequence(ids, vocab_size=6, embed_dim=2, scope="target")
        names = [v.op.name for v in tf.compat.v1.global_variables()]
        model_variables = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.MODEL_VARIABLES)
        table = randomize_variables(sess)["EmbedSequence/embeddings:0"]
        embedded, unique, named = sess.run([embedded, unique, named])
        with pytest.raises(ValueError, match=r"needs vocab_size and embed_dim .* got vocab_size=6 and embed_dim=None"):
            tfstate.layers.embed_sequence(ids, vocab_size=6)
    assert names == ["EmbedSequence/embeddings", "target/embeddings"]
    assert len(model_variables) == 2
    np.testing.assert_array_equal(embedded, table[ids])
    np.testing.assert_array_equal(unique, embedded)
    assert named.shape == (3, 4, 2)
