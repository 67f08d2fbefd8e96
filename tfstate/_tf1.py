"""TF1's deprecated functions, called by tfstate without printing their deprecation notices.

`tf.compat.v1.nn.dynamic_rnn` and its kin log "... is deprecated ... use keras.layers.RNN" the first
time they run, naming the caller's file and line. Called from inside tfstate that notice points at
tfstate's code and tells a ported program to move to Keras, which is the wrong advice: tfstate is
the replacement. These wrappers run the same functions with the notices silenced; a program that
calls `tf.compat.v1.nn.dynamic_rnn` itself still gets TensorFlow's notice.
"""

import contextlib
import functools

import tensorflow as tf
from tensorflow.python.util import deprecation


@contextlib.contextmanager
def _silenced():
    """`deprecation.silence()` whose setting is restored even when the body raises.

    TensorFlow's own `silence()` restores the notices only when its body returns normally; a
    failing `dynamic_rnn` (say, a state of the wrong shape) would silence them for good.
    """
    silence = deprecation.silence()
    silence.__enter__()
    try:
        yield
    finally:
        silence.__exit__(None, None, None)  # resumes silence() normally, which restores the setting


def _quiet(function):
    @functools.wraps(function)
    def call(*args, **kwargs):
        with _silenced():
            return function(*args, **kwargs)

    return call


dynamic_rnn = _quiet(tf.compat.v1.nn.dynamic_rnn)
bidirectional_dynamic_rnn = _quiet(tf.compat.v1.nn.bidirectional_dynamic_rnn)
static_rnn = _quiet(tf.compat.v1.nn.static_rnn)
static_bidirectional_rnn = _quiet(tf.compat.v1.nn.static_bidirectional_rnn)
build_tensor_info = _quiet(tf.compat.v1.saved_model.utils.build_tensor_info)
