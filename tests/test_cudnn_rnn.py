"""tfstate.cudnn_rnn's layers: TF1's canonical checkpoint names, state layout, and cuDNN's equations in NumPy."""

import functools

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_nested_close, graph_session, randomize_variables
from test_contrib_cells import basic_lstm, cudnn_gru, within

from tfstate import LSTMStateTuple, cudnn_rnn

BATCH, TIME, DEPTH, UNITS, LAYERS = 3, 5, 4, 3, 2


def rnn_tanh(w, x, h):
    h = np.tanh(np.concatenate([x, h], 1) @ w["kernel"] + w["bias"])
    return h, h


CASES = {  # layer, cell name, NumPy step, direction
    "lstm": (
        cudnn_rnn.CudnnLSTM,
        "cudnn_compatible_lstm_cell",
        functools.partial(basic_lstm, forget_bias=0.0),
        "unidirectional",
    ),
    "gru_bidirectional": (cudnn_rnn.CudnnGRU, "cudnn_compatible_gru_cell", cudnn_gru, "bidirectional"),
    "rnn_tanh_bidirectional": (cudnn_rnn.CudnnRNNTanh, "basic_rnn_cell", rnn_tanh, "bidirectional"),
}


def _scopes(name):
    layer, cell_name, _, direction = CASES[name]
    scope = layer._default_name
    if direction == "unidirectional":
        return [[f"{scope}/rnn/multi_rnn_cell/cell_{k}/{cell_name}/" for k in range(LAYERS)]]
    return [
        [f"{scope}/stack_bidirectional_rnn/cell_{k}/bidirectional_rnn/{d}/{cell_name}/" for k in range(LAYERS)]
        for d in ("fw", "bw")
    ]


def _numpy_direction(step, w, xs, state, lengths, reverse):
    """One layer in one direction over time-major `xs`; rows stop at their length (backward: reversed within it)."""
    time = len(xs)
    order = [[(n - 1 - t if reverse else t) for t in range(time)] for n in lengths]
    outputs = np.zeros(xs.shape[:2] + (UNITS,))
    for t in range(time):
        live = np.array([t < n for n in lengths])
        x = np.stack([xs[order[b][t] if live[b] else 0, b] for b in range(len(lengths))])
        output, new_state = step(w, x, state)
        state = tf.nest.map_structure(lambda new, old: np.where(live[:, None], new, old), new_state, state)
        for b in np.flatnonzero(live):
            outputs[order[b][t], b] = output[b]
    return outputs, state


def _numpy_layer_stack(name, weights, xs, initial, lengths):
    """TF1's cuDNN layer in NumPy: time-major `xs`, `initial` as the layer's state tuple."""
    step = CASES[name][2]
    scopes = _scopes(name)
    layer_input, finals = xs, []
    for k in range(LAYERS):
        outputs = []
        for d, scopes_of_direction in enumerate(scopes):
            index = k * len(scopes) + d
            state = LSTMStateTuple(c=initial[1][index], h=initial[0][index]) if len(initial) == 2 else initial[0][index]
            output, final = _numpy_direction(
                step, within(weights, scopes_of_direction[k]), layer_input, state, lengths, reverse=d == 1
            )
            outputs.append(output)
            finals.append(final)
        layer_input = np.concatenate(outputs, axis=2)
    if len(initial) == 2:
        return layer_input, (np.stack([f.h for f in finals]), np.stack([f.c for f in finals]))
    return layer_input, (np.stack(finals),)


@pytest.mark.parametrize("time_major", [True, False])
@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_has_tf1_checkpoint_names_and_equals_cudnn_equations_in_numpy(name, time_major, rng):
    layer_class, _, _, direction = CASES[name]
    dirs = 1 if direction == "unidirectional" else 2
    xs = rng.randn(TIME, BATCH, DEPTH).astype(np.float32)
    parts = 2 if layer_class is cudnn_rnn.CudnnLSTM else 1
    initial = tuple(rng.randn(LAYERS * dirs, BATCH, UNITS).astype(np.float32) for _ in range(parts))
    lengths = [TIME, 2, 0]
    with graph_session() as sess:
        layer = layer_class(LAYERS, UNITS, direction=direction)
        if time_major:
            results = layer(tf.constant(xs), initial_state=tuple(map(tf.constant, initial)), sequence_lengths=lengths)
        else:
            results = layer(
                tf.constant(xs.transpose(1, 0, 2)),
                sequence_lengths=lengths,
                time_major=False,
                initial_state=tuple(tf.constant(part.transpose(1, 0, 2)) for part in initial),
            )
        names = [v.op.name for v in tf.compat.v1.global_variables()]
        layer(tf.constant(xs))  # a second call reuses the weights
        assert len(tf.compat.v1.global_variables()) == len(names)
        sess.run(tf.compat.v1.global_variables_initializer())
        weights = {name[:-2]: value for name, value in randomize_variables(sess).items()}
        outputs, states = sess.run(results)
    scopes = [scope for scopes in _scopes(name) for scope in scopes]
    assert all(any(n.startswith(scope) for n in names) for scope in scopes)
    assert all(any(n.startswith(scope) for scope in scopes) for n in names)
    expected_outputs, expected_states = _numpy_layer_stack(name, weights, xs, initial, lengths)
    if not time_major:
        expected_outputs = expected_outputs.transpose(1, 0, 2)
        expected_states = tuple(part.transpose(1, 0, 2) for part in expected_states)
    assert_nested_close(outputs, expected_outputs, atol=2e-5)
    assert_nested_close(states, expected_states, atol=2e-5)


def test_lstm_layer_variables_are_exactly_tf1_canonical_names():
    with graph_session():
        with tf.compat.v1.variable_scope("encoder"):
            cudnn_rnn.CudnnLSTM(LAYERS, UNITS)(tf.zeros([TIME, BATCH, DEPTH]))
        names = [v.op.name for v in tf.compat.v1.global_variables()]
    assert names == [
        f"encoder/cudnn_lstm/rnn/multi_rnn_cell/cell_{k}/cudnn_compatible_lstm_cell/{v}"
        for k in range(LAYERS)
        for v in ("kernel", "bias")
    ]


def test_dropout_applies_between_layers_only_when_training(rng):
    with graph_session() as sess:
        xs = tf.constant(rng.randn(TIME, BATCH, DEPTH).astype(np.float32))
        two, one = cudnn_rnn.CudnnGRU(2, UNITS, dropout=0.5, seed=1), cudnn_rnn.CudnnGRU(1, UNITS, dropout=0.5)
        runs = [two(xs)[0], two(xs, training=False)[0], one(xs)[0], one(xs, training=False)[0]]
        sess.run(tf.compat.v1.global_variables_initializer())
        two_train, two_infer, one_train, one_infer = sess.run(runs)
    assert not np.allclose(two_train, two_infer, atol=1e-4)
    np.testing.assert_allclose(one_train, one_infer)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: cudnn_rnn.CudnnLSTM(1, 3, input_mode="skip_input"), ValueError, "'skip_input'"),
        (lambda: cudnn_rnn.CudnnLSTM(1, 3, direction="both"), ValueError, "direction must be"),
        (lambda: cudnn_rnn.CudnnGRU(1, 3, dtype=tf.int32), ValueError, "got dtype int32"),
        (
            lambda: cudnn_rnn.CudnnLSTM(1, DEPTH, input_mode="auto_select")(tf.zeros([TIME, BATCH, DEPTH])),
            ValueError,
            "means 'skip_input'",
        ),
        (
            lambda: cudnn_rnn.CudnnLSTM(1, 3)(
                tf.zeros([TIME, BATCH, DEPTH]), initial_state=[tf.zeros([1, BATCH, 3])] * 2
            ),
            TypeError,
            "initial_state as a tuple",
        ),
    ],
)
def test_arguments_tfstate_cannot_honour_are_refused_with_the_reason(make, error, message):
    with graph_session():
        with pytest.raises(error, match=message):
            make()
