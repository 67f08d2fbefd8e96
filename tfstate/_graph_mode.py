"""The one check every graph-building entry point makes: are we building a TF1 graph?"""

import tensorflow as tf


def require_graph_mode(what):
    """Raises a RuntimeError naming `what` and the fix when called under eager execution."""
    if tf.executing_eagerly():
        raise RuntimeError(
            f"{what} builds a TF1 (session) graph, but TensorFlow is executing eagerly. "
            "Call tf.compat.v1.disable_eager_execution() at the start of the program, "
            "or build inside `with tf.Graph().as_default():`."
        )
