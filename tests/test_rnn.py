"""tfstate.dynamic_rnn and bidirectional_dynamic_rnn: TF1's results and variable names, fused cells run whole chunks."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_nested_close, graph_session, load_variables, randomize_variables, run_rnn

import tfstate
from tfstate.fused import FusedMultiRNNCell, LSTMBlockCell

BATCH, TIME, DEPTH, UNITS = 3, 6, 4, 5
LENGTHS = np.array([6, 2, 0], np.int32)


@pytest.mark.parametrize("time_major", [False, True])
def test_tfstate_dynamic_rnn_runs_a_fused_cell_whole_and_equals_tf1_dynamic_rnn_stepping_it(rng, time_major):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    if time_major:
        inputs = inputs.transpose(1, 0, 2)
    results = []
    for run in (tfstate.dynamic_rnn, tf.compat.v1.nn.dynamic_rnn):
        with graph_session() as sess:
            x = tf.constant(inputs)
            initial = tfstate.LSTMStateTuple(tf.fill([BATCH, UNITS], 0.3), tf.fill([BATCH, UNITS], -0.2))
            outputs, final = run(
                FusedMultiRNNCell([LSTMBlockCell(UNITS), LSTMBlockCell(UNITS)]),
                x,
                LENGTHS,
                (initial, initial),
                time_major=time_major,
            )
            grads = tf.gradients(tf.reduce_sum(outputs**2), [x] + tf.compat.v1.trainable_variables())
            types = {op.type for op in sess.graph.get_operations()}
            values = randomize_variables(sess) if not results else load_variables(sess, results[0][1])
            results.append((sess.run((outputs, final, grads)), values, types))
    (actual, values, types), (expected, _, expected_types) = results
    assert "while" not in " ".join(types).lower() and "While" in " ".join(expected_types)  # whole chunk vs steps
    assert sorted(values)[0] == "rnn/multi_rnn_cell/cell_0/lstm_cell/bias:0"  # the names dynamic_rnn gives
    assert_nested_close(actual, expected)


def test_tfstate_dynamic_rnn_hands_other_cells_to_tf1_dynamic_rnn_and_needs_a_dtype_like_it(rng):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    outputs, final, _, values, _ = run_rnn(inputs, lambda: tfstate.GRUCell(UNITS), LENGTHS)
    with graph_session() as sess:
        outputs_ours, final_ours = tfstate.dynamic_rnn(
            tfstate.GRUCell(UNITS), tf.constant(inputs), LENGTHS, dtype=tf.float32, parallel_iterations=4
        )
        load_variables(sess, values)
        assert_nested_close(sess.run((outputs_ours, final_ours)), (outputs, final))
        with pytest.raises(ValueError, match="needs initial_state or dtype"):
            tfstate.dynamic_rnn(LSTMBlockCell(UNITS), tf.constant(inputs))


def test_tfstate_bidirectional_dynamic_rnn_equals_tf1s_on_fused_cells(rng):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    results = []
    for run in (tfstate.bidirectional_dynamic_rnn, tf.compat.v1.nn.bidirectional_dynamic_rnn):
        with graph_session() as sess:
            x = tf.constant(inputs)
            outputs, finals = run(
                LSTMBlockCell(UNITS), LSTMBlockCell(UNITS, use_peephole=True), x, LENGTHS, dtype=tf.float32
            )
            loss = tf.reduce_sum(outputs[0] * outputs[1]) + tf.reduce_sum(finals[1].c ** 2)
            grads = tf.gradients(loss, [x] + tf.compat.v1.trainable_variables())
            steps_one_by_one = "While" in " ".join(op.type for op in sess.graph.get_operations())
            values = randomize_variables(sess) if not results else load_variables(sess, results[0][1])
            results.append((sess.run((outputs, finals, grads)), values, steps_one_by_one))
    assert [stepped for _, _, stepped in results] == [False, True]
    assert "bidirectional_rnn/bw/lstm_cell/w_o_diag:0" in results[0][1]
    assert_nested_close(results[0][0], results[1][0])
