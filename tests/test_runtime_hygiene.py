"""tfstate's functions print no TensorFlow deprecation notice pointing into tfstate's own code."""

import os
import subprocess
import sys
import textwrap

import pytest

_PROGRAM = textwrap.dedent("""
    import sys

    import tensorflow as tf
    import tfstate
    from tfstate import rnn_cell

    tf.compat.v1.disable_eager_execution()
    x = tf.compat.v1.placeholder(tf.float32, [2, 3, 4])
    tfstate.dynamic_rnn(rnn_cell.GRUCell(3), x, dtype=tf.float32, scope="a")
    tfstate.bidirectional_dynamic_rnn(rnn_cell.GRUCell(3), rnn_cell.GRUCell(3), x, dtype=tf.float32, scope="b")
    tfstate.stateful_dynamic_rnn(rnn_cell.GRUCell(3), x, scope="c", name="c_state")
    tfstate.dynamic_rnn_with_states(rnn_cell.GRUCell(3), x, dtype=tf.float32, scope="d")
    tfstate.dynamic_rnn(rnn_cell.FusedMultiRNNCell([rnn_cell.LSTMBlockCell(3), rnn_cell.GRUCell(3)]), x,
                        dtype=tf.float32, scope="e")
    rnn_cell.stack_bidirectional_dynamic_rnn([rnn_cell.GRUCell(3)], [rnn_cell.GRUCell(3)], x, dtype=tf.float32)
    rnn_cell.stack_bidirectional_rnn([rnn_cell.GRUCell(3)], [rnn_cell.GRUCell(3)], tf.unstack(x, axis=1),
                                     dtype=tf.float32)
    try:  # a failing call must not leave TensorFlow's notices switched off
        tfstate.dynamic_rnn(rnn_cell.GRUCell(3), x, initial_state=tf.zeros([2, 5]), scope="f")
    except ValueError:
        pass
    print("USER CALL", file=sys.stderr, flush=True)
    tf.compat.v1.nn.dynamic_rnn(rnn_cell.GRUCell(3), x, dtype=tf.float32, scope="user")
""")


@pytest.fixture(scope="module")
def program_log(tmp_path_factory):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path_factory.mktemp("hygiene"),
    )
    assert done.returncode == 0, done.stdout
    return done.stdout


def test_tfstate_rnn_functions_print_no_deprecation_notice(program_log):
    before_user_call = program_log.split("USER CALL")[0]
    assert "is deprecated" not in before_user_call, before_user_call


def test_a_direct_call_of_tf1_dynamic_rnn_still_gets_tensorflows_notice(program_log):
    after_user_call = program_log.split("USER CALL")[1]
    assert "dynamic_rnn (from tensorflow.python.ops.rnn) is deprecated" in after_user_call
