"""Checks made at the boundary of every graph-building entry point, with errors that name the fix."""

import tensorflow as tf


def require_graph_mode(what):
    """Raises a RuntimeError naming `what` and the fix when called under eager execution."""
    if tf.executing_eagerly():
        raise RuntimeError(
            f"{what} builds a TF1 (session) graph, but TensorFlow is executing eagerly. "
            "Call tf.compat.v1.disable_eager_execution() at the start of the program, "
            "or build inside `with tf.Graph().as_default():`."
        )


def describe(nest):
    """A nest's structure with each tensor or array shown by its shape, for error messages."""
    return str(tf.nest.map_structure(lambda part: getattr(part, "shape", part), nest))


def check_structure(state_size, value, what):
    """Raises ValueError unless `value` nests like `state_size` (a plain tuple may stand for a namedtuple)."""
    try:
        tf.nest.assert_same_structure(state_size, value, check_types=False)
    except (ValueError, TypeError):
        raise ValueError(
            f"{what} must be structured like the state_size {state_size}; got {describe(value)}."
        ) from None


def check_state(state_size, state, what):
    """`check_structure`, then every part must be `[batch] + size` where its shape is known."""
    check_structure(state_size, state, what)
    for size, part in zip(tf.nest.flatten(state_size), tf.nest.flatten(state)):
        shape = tf.TensorShape(getattr(part, "shape", None))
        want = tf.TensorShape(size).as_list()
        if shape.rank is not None and not shape[1:].is_compatible_with(want):
            raise ValueError(
                f"{what} must have parts of shape [batch] + {want} (state_size {state_size}); got {describe(state)}."
            )
