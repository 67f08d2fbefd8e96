"""`FusedRNNCellAdaptor` and `TimeReversedFusedRNN` against TF1's dynamic_rnn and legacy cells on reversed inputs."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_nested_close, graph_session, randomize_variables
from tf_keras.src.layers.rnn import legacy_cells

from tfstate import rnn_cell

BATCH, TIME, DEPTH = 3, 5, 4
LENGTHS = [5, 2, 0]


def _run(build, weights=None):
    with graph_session() as sess:
        results = build()
        variables = tf.compat.v1.global_variables()
        sess.run(tf.compat.v1.global_variables_initializer())
        if weights is None:
            weights = randomize_variables(sess)
        else:
            for variable, value in zip(variables, weights.values()):
                variable.load(value, sess)
        return [v.name for v in variables], weights, sess.run(results)


@pytest.mark.parametrize("use_dynamic_rnn", [True, False])
@pytest.mark.parametrize("as_list", [False, True])
def test_adaptor_runs_a_cell_over_time_major_inputs_like_tf1_dynamic_rnn(use_dynamic_rnn, as_list, rng):
    inputs = rng.randn(TIME, BATCH, DEPTH).astype(np.float32)
    names, weights, expected = _run(
        lambda: tf.compat.v1.nn.dynamic_rnn(
            legacy_cells.GRUCell(3), tf.constant(inputs), sequence_length=LENGTHS, dtype=tf.float32, time_major=True
        )
    )

    def ours():
        x = tf.unstack(tf.constant(inputs)) if as_list else tf.constant(inputs)
        outputs, state = rnn_cell.FusedRNNCellAdaptor(rnn_cell.GRUCell(3), use_dynamic_rnn)(
            x, dtype=tf.float32, sequence_length=LENGTHS
        )
        assert isinstance(outputs, list) == as_list
        return tf.stack(outputs) if as_list else outputs, state

    our_names, _, actual = _run(ours, weights)
    assert (
        our_names
        == names
        == [
            "rnn/gru_cell/gates/kernel:0",
            "rnn/gru_cell/gates/bias:0",
            "rnn/gru_cell/candidate/kernel:0",
            "rnn/gru_cell/candidate/bias:0",
        ]
    )
    assert_nested_close(actual, expected)


def test_time_reversed_fused_lstm_is_the_forward_lstm_over_each_row_reversed_within_its_length(rng):
    inputs = rng.randn(TIME, BATCH, DEPTH).astype(np.float32)
    reversed_inputs = inputs.copy()
    for row, length in enumerate(LENGTHS):
        reversed_inputs[:length, row] = inputs[:length, row][::-1]
    _, weights, (outputs, state) = _run(
        lambda: tf.compat.v1.nn.dynamic_rnn(
            legacy_cells.LSTMCell(3),
            tf.constant(reversed_inputs),
            sequence_length=LENGTHS,
            dtype=tf.float32,
            time_major=True,
        )
    )
    expected = outputs.copy()
    for row, length in enumerate(LENGTHS):
        expected[:length, row] = outputs[:length, row][::-1]
    _, _, actual = _run(
        lambda: rnn_cell.TimeReversedFusedRNN(rnn_cell.LSTMBlockFusedCell(3))(
            tf.constant(inputs), dtype=tf.float32, sequence_length=LENGTHS
        ),
        weights,
    )
    assert_nested_close(actual, (expected, state))
