"""Shared helpers: quiet TensorFlow, small graphs with sessions, weights copied across graphs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import contextlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")


@contextlib.contextmanager
def graph_session(seed=0):
    """A fresh graph (with a fixed graph-level seed) and a session on it."""
    with tf.Graph().as_default() as graph:
        tf.compat.v1.set_random_seed(seed)
        with tf.compat.v1.Session(graph=graph) as sess:
            yield sess


def variable_values(sess):
    """{name: value} of every global variable in the session's graph."""
    variables = tf.compat.v1.global_variables()
    return dict(zip([v.name for v in variables], sess.run(variables)))


def randomize_variables(sess, seed=0, scale=0.5):
    """Loads non-trivial uniform(-scale, scale) values into every global variable; returns them by name."""
    rng = np.random.RandomState(seed)
    values = {}
    for variable in tf.compat.v1.global_variables():
        value = rng.uniform(-scale, scale, variable.shape.as_list()).astype(variable.dtype.as_numpy_dtype)
        variable.load(value, sess)
        values[variable.name] = value
    return values


def load_variables(sess, values):
    """Loads {name: value} into the global variables of the same names (all must be present)."""
    variables = {v.name: v for v in tf.compat.v1.global_variables()}
    assert sorted(variables) == sorted(values)
    for name, value in values.items():
        variables[name].load(value, sess)


def assert_nested_close(actual, expected, atol=1e-5):
    tf.nest.assert_same_structure(expected, actual, check_types=False)
    for a, e in zip(tf.nest.flatten(actual), tf.nest.flatten(expected)):
        np.testing.assert_allclose(a, e, atol=atol, rtol=0)


@pytest.fixture
def rng():
    return np.random.RandomState(1234)
