"""`stack_bidirectional_dynamic_rnn` / `stack_bidirectional_rnn` against TF1's bidirectional RNNs stacked by hand."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_nested_close, graph_session, load_variables, randomize_variables
from tf_keras.src.layers.rnn import legacy_cells

import tfstate
from tfstate import rnn_cell

BATCH, TIME, DEPTH = 3, 5, 4
LENGTHS = [5, 2, 0]

LAYERS = {  # (tfstate's cells, TF1's cells): same variable names
    "lstm_then_gru": (
        lambda: [rnn_cell.LSTMCell(3), rnn_cell.GRUCell(2)],
        lambda: [legacy_cells.LSTMCell(3), legacy_cells.GRUCell(2)],
    ),
    "fused_lstm": (
        lambda: [rnn_cell.LSTMBlockCell(3), rnn_cell.LSTMBlockCell(2)],
        lambda: [legacy_cells.LSTMCell(3), legacy_cells.LSTMCell(2)],
    ),
}


def _tf1_stack(cells_fw, cells_bw, inputs, time_major, initial_states_fw):
    """TF1's stack of bidirectional layers, written out with TF1's cells and `bidirectional_dynamic_rnn`."""
    layer_input, states_fw, states_bw = inputs, [], []
    with tf.compat.v1.variable_scope("stack_bidirectional_rnn"):
        for index, (cell_fw, cell_bw) in enumerate(zip(cells_fw, cells_bw)):
            with tf.compat.v1.variable_scope(f"cell_{index}"):
                outputs, (state_fw, state_bw) = tf.compat.v1.nn.bidirectional_dynamic_rnn(
                    cell_fw,
                    cell_bw,
                    layer_input,
                    sequence_length=LENGTHS,
                    dtype=tf.float32,
                    time_major=time_major,
                    initial_state_fw=initial_states_fw[index],
                )
                layer_input = tf.concat(outputs, 2)
            states_fw.append(state_fw)
            states_bw.append(state_bw)
    return layer_input, tuple(states_fw), tuple(states_bw)


def _run(build, inputs, weights=None):
    with graph_session() as sess:
        results = build(tf.constant(inputs))
        names = [v.name for v in tf.compat.v1.global_variables()]
        sess.run(tf.compat.v1.global_variables_initializer())
        weights = randomize_variables(sess) if weights is None else weights
        load_variables(sess, weights)
        return names, weights, sess.run(results)


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("layers", sorted(LAYERS))
def test_stack_bidirectional_dynamic_rnn_equals_tf1_layers_stacked_by_hand(layers, time_major, rng):
    inputs = rng.randn(*((TIME, BATCH) if time_major else (BATCH, TIME)), DEPTH).astype(np.float32)
    initial_fw = rng.randn(BATCH, 3).astype(np.float32)
    make_tfstate, make_tf1 = LAYERS[layers]

    def first_state(cell):
        zero = cell.zero_state(BATCH, tf.float32)
        return type(zero)(tf.constant(initial_fw), zero[1]) if isinstance(zero, tuple) else tf.constant(initial_fw)

    def tf1(x):
        cells_fw, cells_bw = make_tf1(), make_tf1()
        return _tf1_stack(cells_fw, cells_bw, x, time_major, [first_state(cells_fw[0]), None])

    def ours(x):
        cells_fw, cells_bw = make_tfstate(), make_tfstate()
        return rnn_cell.stack_bidirectional_dynamic_rnn(
            cells_fw,
            cells_bw,
            x,
            initial_states_fw=[first_state(cells_fw[0]), None],
            dtype=tf.float32,
            sequence_length=LENGTHS,
            time_major=time_major,
        )

    names, weights, expected = _run(tf1, inputs)
    our_names, _, actual = _run(ours, inputs, weights)
    assert our_names == names
    assert "stack_bidirectional_rnn/cell_1/bidirectional_rnn/bw/" + names[-1].split("/bw/")[-1] == names[-1]
    assert_nested_close(actual, expected)


def test_stack_bidirectional_rnn_equals_tf1_static_layers_stacked_by_hand(rng):
    inputs = rng.randn(BATCH, 3, DEPTH).astype(np.float32)  # 3 steps: a static unroll builds a graph per step

    def tf1(x):
        layer_input, states = tf.unstack(x, axis=1), []
        with tf.compat.v1.variable_scope("stack_bidirectional_rnn"):
            for index, units in enumerate((3, 2)):
                with tf.compat.v1.variable_scope(f"cell_{index}") as scope:
                    layer_input, state_fw, state_bw = tf.compat.v1.nn.static_bidirectional_rnn(
                        legacy_cells.GRUCell(units),
                        legacy_cells.LSTMCell(units),
                        layer_input,
                        sequence_length=[3, 1, 0],
                        dtype=tf.float32,
                        scope=scope,
                    )
                states += [state_fw, state_bw]
        return layer_input, states

    def ours(x):
        outputs, states_fw, states_bw = rnn_cell.stack_bidirectional_rnn(
            [rnn_cell.GRUCell(3), rnn_cell.GRUCell(2)],
            [rnn_cell.LSTMCell(3), rnn_cell.LSTMCell(2)],
            tf.unstack(x, axis=1),
            dtype=tf.float32,
            sequence_length=[3, 1, 0],
        )
        return outputs, [state for pair in zip(states_fw, states_bw) for state in pair]

    names, weights, expected = _run(tf1, inputs)
    our_names, _, actual = _run(ours, inputs, weights)
    assert our_names == names
    assert names[0] == "stack_bidirectional_rnn/cell_0/fw/gru_cell/gates/kernel:0"
    assert_nested_close(actual, expected)


def test_cudnn_compatible_layers_get_the_names_tf1_cudnn_lstm_saved_under(rng):
    with graph_session():
        with tf.compat.v1.variable_scope("cudnn_lstm"):
            rnn_cell.stack_bidirectional_dynamic_rnn(
                [rnn_cell.CudnnCompatibleLSTMCell(3)],
                [rnn_cell.CudnnCompatibleLSTMCell(3)],
                tf.zeros([TIME, BATCH, DEPTH]),
                dtype=tf.float32,
                time_major=True,
            )
        names = [v.op.name for v in tf.compat.v1.global_variables()]
    assert names == [
        f"cudnn_lstm/stack_bidirectional_rnn/cell_0/bidirectional_rnn/{d}/cudnn_compatible_lstm_cell/{v}"
        for d in ("fw", "bw")
        for v in ("kernel", "bias")
    ]


@pytest.mark.parametrize("function", ["stack_bidirectional_dynamic_rnn", "stack_bidirectional_rnn"])
@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(cells_fw=[], cells_bw=[]), "'cells_fw' as a non-empty list"),
        (dict(cells_fw=(1,), cells_bw=[1]), "'cells_fw' as a non-empty list"),
        (dict(cells_fw=[1, 2], cells_bw=[1]), "got 2 in 'cells_fw' and 1 in 'cells_bw'"),
        (dict(cells_fw=[1], cells_bw=[1], initial_states_bw=[None, None]), "'initial_states_bw' as a list of 1 states"),
    ],
)
def test_layer_lists_that_do_not_pair_up_are_refused_with_the_reason(function, arguments, message):
    with graph_session():
        with pytest.raises(ValueError, match=message):
            getattr(rnn_cell, function)(inputs=tf.zeros([1, 2, 3]), **arguments)


def test_stacked_bidirectional_rnn_under_eager_execution_names_the_fix():
    with pytest.raises(RuntimeError, match="eagerly"):
        tfstate.rnn_cell.stack_bidirectional_dynamic_rnn(
            [rnn_cell.GRUCell(2)], [rnn_cell.GRUCell(2)], tf.zeros([1, 2, 3]), dtype=tf.float32
        )
