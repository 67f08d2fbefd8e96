"""TF1 contrib's other cells and wrappers: TF1's variable names, and TF1's equations re-derived in NumPy."""

import collections
import functools

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_nested_close, graph_session, load_variables, randomize_variables

import tfstate
from tfstate import rnn_cell

BATCH, TIME, DEPTH = 3, 5, 4
LENGTHS = [5, 2, 0]
State = tfstate.LSTMStateTuple


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def norm(values, w, scope):
    """tf.contrib.layers.layer_norm with `scope/gamma`, `scope/beta`."""
    mean, variance = values.mean(1, keepdims=True), values.var(1, keepdims=True)
    return (values - mean) / np.sqrt(variance + 1e-12) * w[f"{scope}/gamma"] + w[f"{scope}/beta"]


def cat(*parts):
    return np.concatenate(parts, axis=-1)


def within(w, scope):
    return {name[len(scope) :]: value for name, value in w.items() if name.startswith(scope)}


# ---- TF1's equations, one step each: (weights by name, inputs, state) -> (output, new state) ----


def basic_lstm(w, x, state, forget_bias=1.0):
    c, h = state
    i, j, f, o = np.split(cat(x, h) @ w["kernel"] + w["bias"], 4, axis=1)
    c = c * sigmoid(f + forget_bias) + sigmoid(i) * np.tanh(j)
    h = np.tanh(c) * sigmoid(o)
    return h, State(c, h)


def gru(w, x, h):
    r, u = np.split(sigmoid(cat(x, h) @ w["gates/kernel"] + w["gates/bias"]), 2, axis=1)
    h = u * h + (1 - u) * np.tanh(cat(x, r * h) @ w["candidate/kernel"] + w["candidate/bias"])
    return h, h


def layer_norm_lstm(w, x, state, forget_bias=1.0, layer_norm=True):
    c, h = state
    z = cat(x, h) @ w["kernel"] + (0 if layer_norm else w["bias"])
    gates = np.split(z, 4, axis=1)
    if layer_norm:
        gates = [norm(gate, w, scope) for gate, scope in zip(gates, ("input", "transform", "forget", "output"))]
    i, j, f, o = gates
    c = c * sigmoid(f + forget_bias) + sigmoid(i) * np.tanh(j)
    if layer_norm:
        c = norm(c, w, "state")
    h = np.tanh(c) * sigmoid(o)
    return h, State(c, h)


def coupled_lstm(w, x, state, units, proj_clip=None, layer_norm=False, state_is_tuple=True):
    c, m = state if state_is_tuple else (state[:, :units], state[:, units:])
    j, f, o = np.split(cat(x, m) @ w["W_0"] + (0 if layer_norm else w["B"]), 3, axis=1)
    if layer_norm:
        j, f, o = norm(j, w, "transform"), norm(f, w, "forget"), norm(o, w, "output")
    forget = sigmoid(f + 1.0 + w.get("W_F_diag", 0) * c)
    c = forget * c + (1 - forget) * np.tanh(j)
    if layer_norm:
        c = norm(c, w, "state")
    m = sigmoid(o + w.get("W_O_diag", 0) * c) * np.tanh(c)
    if "W_P_0" in w:
        m = m @ w["W_P_0"]
        if proj_clip is not None:
            m = np.clip(m, -proj_clip, proj_clip)
    return m, State(c, m) if state_is_tuple else cat(c, m)


def group_lstm(w, x, state, groups):
    c, m = state
    parts = [
        np.split(cat(xg, mg) @ w[f"group{g}/kernel"], 4, axis=1)
        for g, (xg, mg) in enumerate(zip(np.split(x, groups, 1), np.split(m, groups, 1)))
    ]
    i, j, f, o = (cat(*gate) + w[f"bias_{name}"] for gate, name in zip(zip(*parts), "ijfo"))
    c = sigmoid(f + 1.0) * c + sigmoid(i) * np.tanh(j)
    m = sigmoid(o) * np.tanh(c)
    if "projection/kernel" in w:
        m = m @ w["projection/kernel"]
    return m, State(c, m)


def nas(w, x, state):
    c, m = state
    relu = functools.partial(np.maximum, 0)
    xs = np.split(x @ w["kernel"], 8, axis=1)
    ms = np.split(m @ w["recurrent_kernel"] + w.get("bias", 0), 8, axis=1)
    l1 = [
        sigmoid(xs[0] + ms[0]),
        relu(xs[1] + ms[1]),
        sigmoid(xs[2] + ms[2]),
        relu(xs[3] * ms[3]),
        np.tanh(xs[4] + ms[4]),
        sigmoid(xs[5] + ms[5]),
        np.tanh(xs[6] + ms[6]),
        sigmoid(xs[7] + ms[7]),
    ]
    l2 = [np.tanh(l1[0] * l1[1]), np.tanh(l1[2] + l1[3]), np.tanh(l1[4] * l1[5]), sigmoid(l1[6] + l1[7])]
    c = np.tanh(l2[0] + c) * l2[1]
    m = np.tanh(c * np.tanh(l2[2] + l2[3]))
    if "projection_weights" in w:
        m = m @ w["projection_weights"]
    return m, State(c, m)


def ugrnn(w, x, h):
    g, candidate = np.split(cat(x, h) @ w["kernel"] + w["bias"], 2, axis=1)
    g = sigmoid(g + 1.0)
    h = g * h + (1 - g) * np.tanh(candidate)
    return h, h


def intersection_rnn(w, x, h):
    if "in_projection/kernel" in w:
        x = x @ w["in_projection/kernel"] + w["in_projection/bias"]
    gh, h_act, gy, y_act = np.split(cat(x, h) @ w["kernel"] + w["bias"], 4, axis=1)
    gh, gy = sigmoid(gh + 1.0), sigmoid(gy + 1.0)
    return gy * x + (1 - gy) * np.maximum(y_act, 0), gh * h + (1 - gh) * np.tanh(h_act)


def sru(w, x, c):
    x_bar, f, r, x_tx = np.split(x @ w["kernel"], 4, axis=1)
    f, r = np.split(sigmoid(cat(f, r) + w["bias"]), 2, axis=1)
    c = f * c + (1 - f) * x_bar
    return r * np.tanh(c) + (1 - r) * x_tx, c


def ind_rnn(w, x, h):
    h = np.maximum(x @ w["kernel_w"] + h * w["kernel_u"] + w["bias"], 0)  # built with activation=relu
    return h, h


def indy_gru(w, x, h):
    r, u = np.split(sigmoid(x @ w["gates/kernel_w"] + cat(h, h) * w["gates/kernel_u"] + w["gates/bias"]), 2, axis=1)
    c = np.tanh(x @ w["candidate/kernel"] + r * h * w["candidate/kernel_u"] + w["candidate/bias"])
    h = u * h + (1 - u) * c
    return h, h


def indy_lstm(w, x, state, forget_bias):
    c, h = state
    i, j, f, o = np.split(x @ w["kernel_w"] + cat(h, h, h, h) * w["kernel_u"] + w["bias"], 4, axis=1)
    c = c * sigmoid(f + forget_bias) + sigmoid(i) * np.tanh(j)
    h = np.tanh(c) * sigmoid(o)
    return h, State(c, h)


def cudnn_gru(w, x, h):
    r, u = np.split(sigmoid(cat(x, h) @ w["gates/kernel"] + w["gates/bias"]), 2, axis=1)
    c = np.tanh(
        x @ w["candidate/input_projection/kernel"]
        + w["candidate/input_projection/bias"]
        + r * (h @ w["candidate/hidden_projection/kernel"] + w["candidate/hidden_projection/bias"])
    )
    h = (1 - u) * c + u * h
    return h, h


def conv_same(x, kernel):
    """Stride-1 "SAME" convolution of `[batch, *spatial, in]` by `kernel` `[*window, in, out]`."""
    window = kernel.shape[:-2]
    padded = np.pad(x, [(0, 0)] + [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in window] + [(0, 0)])
    out = np.zeros(x.shape[:-1] + kernel.shape[-1:])
    for offset in np.ndindex(*window):
        out += padded[(slice(None),) + tuple(slice(o, o + n) for o, n in zip(offset, x.shape[1:-1]))] @ kernel[offset]
    return out


def conv_lstm(w, x, state):
    c, h = state
    i, j, f, o = np.split(conv_same(cat(x, h), w["kernel"]) + w["biases"], 4, axis=-1)
    c = sigmoid(f + 1.0) * c + sigmoid(i) * np.tanh(j)
    h = np.tanh(c) * sigmoid(o)
    return h, State(c, h)


def phased_lstm(w, inputs, state, peepholes, leak=0.001):
    time, x = inputs
    c_prev, h_prev = state
    extra = [c_prev] if peepholes else []
    i, f = np.split(sigmoid(cat(x, h_prev, *extra) @ w["mask_gates/kernel"] + w["mask_gates/bias"]), 2, axis=1)
    c = c_prev * f + i * np.tanh(cat(x, h_prev) @ w["new_input/kernel"] + w["new_input/bias"])
    extra = [c] if peepholes else []
    h = np.tanh(c) * sigmoid(cat(x, h_prev, *extra) @ w["output_gate/kernel"] + w["output_gate/bias"])
    phi = np.mod(time - w["phase"], w["period"]) / w["period"]
    r_on = w["ratio_on"]
    k = np.where(phi < 0.5 * r_on, 2 * phi / r_on, np.where(phi < r_on, 2 - 2 * phi / r_on, leak * phi))
    h = k * h + (1 - k) * h_prev
    return h, State(k * c + (1 - k) * c_prev, h)


def attention_lstm(w, x, state, length, size):
    cell_state, attns, window = state
    window = window.reshape(len(x), length, size)
    inner = within(w, "basic_lstm_cell/")
    output, cell_state = basic_lstm(inner, cat(x, attns) @ w["kernel"] + w["bias"], cell_state)
    hidden = window @ w["attention/attn_w"][0, 0]
    y = cat(*cell_state) @ w["attention/kernel"] + w["attention/bias"]
    scores = (w["attention/attn_v"] * np.tanh(hidden + y[:, None])).sum(2)
    weights = np.exp(scores - scores.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    attns = (weights[:, :, None] * window).sum(1)
    output = cat(output, attns) @ w["attn_output_projection/kernel"] + w["attn_output_projection/bias"]
    window = np.concatenate([window[:, 1:], output[:, None]], axis=1).reshape(len(x), length * size)
    return output, (cell_state, attns, window)


def highway_gru(w, x, h, coupled):
    output, h = gru(within(w, "gru_cell/"), x, h)
    carry = sigmoid(x @ w["carry_w"] + w["carry_b"])
    transform = 1 - carry if coupled else sigmoid(x @ w["transform_w"] + w["transform_b"])
    return x * carry + output * transform, h


Case = collections.namedtuple("Case", "make oracle scope names input_shape", defaults=[(DEPTH,)])
_LSTM = ["kernel", "bias"]
_GRU = ["gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"]

CASES = {
    "layer_norm_basic_lstm": Case(
        lambda: rnn_cell.LayerNormBasicLSTMCell(3, forget_bias=0.5),
        functools.partial(layer_norm_lstm, forget_bias=0.5),
        "layer_norm_basic_lstm_cell/",
        ["kernel"]
        + [f"{s}/{v}" for s in ("input", "transform", "forget", "output", "state") for v in ("gamma", "beta")],
    ),
    "layer_norm_basic_lstm_without_norm": Case(
        lambda: rnn_cell.LayerNormBasicLSTMCell(3, layer_norm=False),
        functools.partial(layer_norm_lstm, layer_norm=False),
        "layer_norm_basic_lstm_cell/",
        ["kernel", "bias"],
    ),
    "coupled_input_forget_gate_lstm": Case(
        lambda: rnn_cell.CoupledInputForgetGateLSTMCell(4, use_peepholes=True, num_proj=2, proj_clip=0.3),
        functools.partial(coupled_lstm, units=4, proj_clip=0.3),
        "coupled_input_forget_gate_lstm_cell/",
        ["W_0", "B", "W_F_diag", "W_O_diag", "W_P_0"],
    ),
    "coupled_input_forget_gate_lstm_layer_norm_concat_state": Case(
        lambda: rnn_cell.CoupledInputForgetGateLSTMCell(3, layer_norm=True, state_is_tuple=False),
        functools.partial(coupled_lstm, units=3, layer_norm=True, state_is_tuple=False),
        "coupled_input_forget_gate_lstm_cell/",
        ["W_0", "B"] + [f"{s}/{v}" for s in ("transform", "forget", "output", "state") for v in ("gamma", "beta")],
    ),
    "glstm": Case(
        lambda: rnn_cell.GLSTMCell(4, number_of_groups=2, num_proj=2),
        functools.partial(group_lstm, groups=2),
        "glstm_cell/",
        ["group0/kernel", "group1/kernel", "bias_i", "bias_j", "bias_f", "bias_o", "projection/kernel"],
    ),
    "nas": Case(lambda: rnn_cell.NASCell(3), nas, "nas_cell/", ["recurrent_kernel", "kernel"]),
    "nas_bias_projection": Case(
        lambda: rnn_cell.NASCell(3, num_proj=2, use_bias=True),
        nas,
        "nas_cell/",
        ["recurrent_kernel", "kernel", "bias", "projection_weights"],
    ),
    "ugrnn": Case(lambda: rnn_cell.UGRNNCell(3), ugrnn, "ugrnn_cell/", _LSTM),
    "intersection_rnn": Case(
        lambda: rnn_cell.IntersectionRNNCell(DEPTH), intersection_rnn, "intersection_rnn_cell/", _LSTM
    ),
    "intersection_rnn_projected": Case(
        lambda: rnn_cell.IntersectionRNNCell(3, num_in_proj=3),
        intersection_rnn,
        "intersection_rnn_cell/",
        ["in_projection/kernel", "in_projection/bias"] + _LSTM,
    ),
    "sru": Case(lambda: rnn_cell.SRUCell(3), sru, "sru_cell/", _LSTM),
    "ind_rnn": Case(
        lambda: rnn_cell.IndRNNCell(3, activation=tf.nn.relu),
        ind_rnn,
        "ind_rnn_cell/",
        ["kernel_w", "kernel_u", "bias"],
    ),
    "indy_gru": Case(
        lambda: rnn_cell.IndyGRUCell(3),
        indy_gru,
        "indy_gru_cell/",
        ["gates/kernel_w", "gates/kernel_u", "gates/bias", "candidate/kernel", "candidate/kernel_u", "candidate/bias"],
    ),
    "indy_lstm": Case(
        lambda: rnn_cell.IndyLSTMCell(3, forget_bias=0.5),
        functools.partial(indy_lstm, forget_bias=0.5),
        "indy_lstm_cell/",
        ["kernel_w", "kernel_u", "bias"],
    ),
    "cudnn_compatible_lstm": Case(
        lambda: rnn_cell.CudnnCompatibleLSTMCell(3),
        functools.partial(basic_lstm, forget_bias=0.0),
        "cudnn_compatible_lstm_cell/",
        _LSTM,
    ),
    "cudnn_compatible_gru": Case(
        lambda: rnn_cell.CudnnCompatibleGRUCell(3),
        cudnn_gru,
        "cudnn_compatible_gru_cell/",
        [
            "gates/kernel",
            "gates/bias",
            "candidate/input_projection/kernel",
            "candidate/hidden_projection/kernel",
            "candidate/input_projection/bias",
            "candidate/hidden_projection/bias",
        ],
    ),
    "attention_cell_wrapper": Case(
        lambda: rnn_cell.AttentionCellWrapper(rnn_cell.BasicLSTMCell(3), attn_length=2),
        functools.partial(attention_lstm, length=2, size=3),
        "attention_cell_wrapper/",
        [
            "kernel",
            "bias",
            "basic_lstm_cell/kernel",
            "basic_lstm_cell/bias",
            "attention/attn_w",
            "attention/attn_v",
            "attention/kernel",
            "attention/bias",
            "attn_output_projection/kernel",
            "attn_output_projection/bias",
        ],
    ),
    "highway_coupled": Case(
        lambda: rnn_cell.HighwayWrapper(rnn_cell.GRUCell(DEPTH)),
        functools.partial(highway_gru, coupled=True),
        "",
        [f"gru_cell/{name}" for name in _GRU] + ["carry_w", "carry_b"],
    ),
    "highway_own_transform_gate": Case(
        lambda: rnn_cell.HighwayWrapper(
            rnn_cell.GRUCell(DEPTH), couple_carry_transform_gates=False, carry_bias_init=2.0
        ),
        functools.partial(highway_gru, coupled=False),
        "",
        [f"gru_cell/{name}" for name in _GRU] + ["carry_w", "carry_b", "transform_w", "transform_b"],
    ),
    "conv_2d_lstm": Case(
        lambda: rnn_cell.Conv2DLSTMCell(input_shape=[4, 3, 2], output_channels=3, kernel_shape=[3, 3]),
        conv_lstm,
        "conv_2d_lstm_cell/",
        ["kernel", "biases"],
        (4, 3, 2),
    ),
    "conv_1d_lstm": Case(
        lambda: rnn_cell.ConvLSTMCell(1, input_shape=[5, 2], output_channels=2, kernel_shape=[2]),
        conv_lstm,
        "conv_lstm_cell/",
        ["kernel", "biases"],
        (5, 2),
    ),
    "phased_lstm_peepholes": Case(
        lambda: rnn_cell.PhasedLSTMCell(3, use_peepholes=True),
        functools.partial(phased_lstm, peepholes=True),
        "phased_lstm_cell/",
        [f"{s}/{v}" for s in ("mask_gates", "new_input", "output_gate") for v in _LSTM]
        + ["period", "phase", "ratio_on"],
    ),
}


def _is_phased(name):
    return name.startswith("phased")


def _inputs(name, rng, dtype):
    case = CASES[name]
    features = rng.randn(BATCH, TIME, *case.input_shape).astype(dtype)
    if not _is_phased(name):
        return features
    times = np.cumsum(rng.uniform(0.3, 1.2, (BATCH, TIME, 1)), axis=1).astype(dtype)
    return times, features


def _phase_values(values, dtype):
    """Periods, phases and open ratios that put the units in every regime of the phased gate."""
    for name, value in (("period", [1.5, 3.0, 7.0]), ("phase", [0.2, 1.0, 4.0]), ("ratio_on", [0.3, 0.5, 0.4])):
        values[f"rnn/phased_lstm_cell/{name}:0"] = np.array(value, dtype)
    return values


def _numpy_unroll(name, cell, weights, inputs, lengths):
    case = CASES[name]
    w = {
        key[len("rnn/" + case.scope) : -2]: value
        for key, value in weights.items()
        if key.startswith("rnn/" + case.scope)
    }
    state = tf.nest.map_structure(lambda size: np.zeros([BATCH] + tf.TensorShape(size).as_list()), cell.state_size)
    outputs = []
    for t in range(TIME):
        step = tf.nest.map_structure(lambda part: part[:, t], inputs)
        output, new_state = case.oracle(w, step, state)
        live = np.array([t < n for n in lengths])

        def keep(new, old):
            return np.where(live.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

        state = tf.nest.map_structure(keep, new_state, state)
        outputs.append(keep(output, np.zeros_like(output)))
    return np.stack(outputs, 1), state


def _run(name, inputs, dtype, rnn):
    with graph_session() as sess:
        cell = CASES[name].make()
        outputs, final = rnn(cell, tf.nest.map_structure(tf.constant, inputs), sequence_length=LENGTHS, dtype=dtype)
        names = [v.name for v in tf.compat.v1.global_variables()]
        sess.run(tf.compat.v1.global_variables_initializer())
        values = randomize_variables(sess)
        if _is_phased(name):
            load_variables(sess, _phase_values(values, dtype.as_numpy_dtype))
        return cell, names, values, sess.run((outputs, final))


RUNNERS = {"tf1_dynamic_rnn": tf.compat.v1.nn.dynamic_rnn, "tfstate_dynamic_rnn": tfstate.dynamic_rnn}
# tfstate.dynamic_rnn hands plain cells to TF1's; it runs its own path for the fused cuDNN LSTM
_RUNS = [(name, "tf1_dynamic_rnn") for name in sorted(CASES)] + [
    (name, "tfstate_dynamic_rnn") for name in ("cudnn_compatible_lstm", "phased_lstm_peepholes", "conv_2d_lstm")
]


@pytest.mark.parametrize("name, runner", _RUNS)
def test_cell_has_tf1_variable_names_and_equals_tf1_equations_in_numpy(name, runner, rng):
    inputs = _inputs(name, rng, np.float32)
    cell, names, values, (outputs, final) = _run(name, inputs, tf.float32, RUNNERS[runner])
    assert names == [f"rnn/{CASES[name].scope}{short}:0" for short in CASES[name].names]
    expected_outputs, expected_final = _numpy_unroll(name, cell, values, inputs, LENGTHS)
    assert_nested_close(outputs, expected_outputs, atol=2e-5)
    assert_nested_close(final, expected_final, atol=2e-5)


@pytest.mark.parametrize(
    "name",
    [
        "layer_norm_basic_lstm",
        "nas_bias_projection",
        "indy_lstm",
        "ugrnn",
        "cudnn_compatible_gru",
        "conv_2d_lstm",
        "attention_cell_wrapper",
    ],
)
def test_cell_runs_in_float64_as_tf1_did(name, rng):
    inputs = _inputs(name, rng, np.float64)
    cell, _, values, (outputs, final) = _run(name, inputs, tf.float64, tf.compat.v1.nn.dynamic_rnn)
    assert all(value.dtype == np.float64 for value in values.values())
    expected_outputs, expected_final = _numpy_unroll(name, cell, values, inputs, LENGTHS)
    assert_nested_close(outputs, expected_outputs, atol=1e-10)
    assert_nested_close(final, expected_final, atol=1e-10)


@pytest.mark.parametrize(
    "name",
    [
        "attention_cell_wrapper",
        "layer_norm_basic_lstm",
        "cudnn_compatible_lstm",
        "highway_coupled",
        "phased_lstm_peepholes",
    ],
)
def test_stateful_chunks_equal_one_long_run(name, rng):
    inputs = _inputs(name, rng, np.float32)
    with graph_session() as sess:
        cell = CASES[name].make()
        whole = tf.nest.map_structure(tf.constant, inputs)
        halves = tf.nest.map_structure(lambda part: tf.compat.v1.placeholder(tf.float32, part[:, :2].shape), inputs)
        rnn = tfstate.stateful_dynamic_rnn(cell, halves, batch_size=BATCH)
        long_outputs, long_final = tfstate.dynamic_rnn(cell, whole, dtype=tf.float32, scope="rnn")
        sess.run([tf.compat.v1.global_variables_initializer(), tf.compat.v1.local_variables_initializer()])
        values = randomize_variables(sess)
        if _is_phased(name):
            load_variables(sess, _phase_values(values, np.float32))
        chunks = []
        for start in (0, 2):
            feed = dict(zip(tf.nest.flatten(halves), [part[:, start : start + 2] for part in tf.nest.flatten(inputs)]))
            chunks.append(sess.run((rnn.outputs, rnn.keep), feed)[0])
        long_outputs = sess.run(long_outputs)
    np.testing.assert_allclose(np.concatenate(chunks, 1), long_outputs[:, :4], atol=1e-5)


def test_cudnn_compatible_lstm_cell_equals_tf1_lstm_cell_without_forget_bias(rng):
    legacy_cells = pytest.importorskip("tf_keras.src.layers.rnn.legacy_cells")
    with graph_session() as sess:
        inputs = tf.constant(rng.randn(BATCH, TIME, DEPTH).astype(np.float32))
        expected = tf.compat.v1.nn.dynamic_rnn(
            legacy_cells.LSTMCell(3, forget_bias=0.0), inputs, dtype=tf.float32, scope="tf1"
        )
        actual = tfstate.dynamic_rnn(rnn_cell.CudnnCompatibleLSTMCell(3), inputs, dtype=tf.float32, scope="tfstate")
        sess.run(tf.compat.v1.global_variables_initializer())
        weights = randomize_variables(sess)
        for name, value in weights.items():
            if name.startswith("tf1/"):
                twin = next(
                    v
                    for v in tf.compat.v1.global_variables()
                    if v.name == name.replace("tf1/lstm_cell", "tfstate/cudnn_compatible_lstm_cell")
                )
                twin.load(value, sess)
        assert_nested_close(sess.run(actual), sess.run(expected))


def test_cells_step_under_static_rnn_reusing_their_weights(rng):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    for name in ("highway_own_transform_gate", "attention_cell_wrapper", "glstm"):
        with graph_session() as sess:
            cell = CASES[name].make()
            outputs, _ = tf.compat.v1.nn.static_rnn(cell, tf.unstack(tf.constant(inputs), axis=1), dtype=tf.float32)
            assert [v.name for v in tf.compat.v1.global_variables()] == [
                f"rnn/{CASES[name].scope}{short}:0" for short in CASES[name].names
            ]
            sess.run(tf.compat.v1.global_variables_initializer())
            values = randomize_variables(sess)
            outputs = np.stack(sess.run(outputs), 1)
        expected, _ = _numpy_unroll(name, cell, values, inputs, [TIME] * BATCH)
        np.testing.assert_allclose(outputs, expected, atol=2e-5)


def test_layer_norm_cell_dropout_is_off_at_keep_probability_one_and_random_below(rng):
    with graph_session() as sess:
        inputs = tf.constant(rng.randn(BATCH, TIME, DEPTH).astype(np.float32))
        keep = tf.compat.v1.placeholder_with_default(1.0, [])
        outputs, _ = tf.compat.v1.nn.dynamic_rnn(
            rnn_cell.LayerNormBasicLSTMCell(3, dropout_keep_prob=keep, dropout_prob_seed=1), inputs, dtype=tf.float32
        )
        plain, _ = tf.compat.v1.nn.dynamic_rnn(
            rnn_cell.LayerNormBasicLSTMCell(3), inputs, dtype=tf.float32, scope="plain"
        )
        sess.run(tf.compat.v1.global_variables_initializer())
        values = randomize_variables(sess)
        load_variables(
            sess, {**values, **{n.replace("rnn/", "plain/"): v for n, v in values.items() if n.startswith("rnn/")}}
        )
        np.testing.assert_allclose(sess.run(outputs), sess.run(plain), atol=1e-6)
        dropped = sess.run(outputs, {keep: 0.5})
        assert not np.allclose(dropped, sess.run(plain), atol=1e-3)


BAD_ARGUMENTS = {
    "attention_window_length": (
        lambda: rnn_cell.AttentionCellWrapper(rnn_cell.GRUCell(2), 0),
        "attn_length > 0; got 0",
    ),
    "attention_concat_state_of_tuple_cell": (
        lambda: rnn_cell.AttentionCellWrapper(rnn_cell.LSTMCell(2), 2, state_is_tuple=False),
        "single-tensor state",
    ),
    "glstm_groups": (lambda: rnn_cell.GLSTMCell(5, number_of_groups=2), "'num_units' divisible by number_of_groups=2"),
    "conv_input_shape": (
        lambda: rnn_cell.Conv2DLSTMCell(input_shape=[4, 2], output_channels=2, kernel_shape=[3, 3]),
        "needs input_shape of 3 values",
    ),
    "conv_kernel_shape": (
        lambda: rnn_cell.Conv2DLSTMCell(input_shape=[4, 4, 2], output_channels=2, kernel_shape=[3]),
        "needs kernel_shape of 2 values",
    ),
    "conv_skip_connection": (
        lambda: rnn_cell.Conv1DLSTMCell(input_shape=[4, 2], output_channels=2, kernel_shape=[3], skip_connection=True),
        "skip_connection=True",
    ),
    "coupled_shards": (lambda: rnn_cell.CoupledInputForgetGateLSTMCell(3, num_unit_shards=2), "one shard each"),
    "layer_norm_keep_probability": (
        lambda: rnn_cell.LayerNormBasicLSTMCell(3, dropout_keep_prob=1.5),
        "dropout_keep_prob must be in \\[0, 1\\]; got 1.5",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_ARGUMENTS))
def test_bad_constructor_arguments_are_refused_with_the_reason(name):
    make, message = BAD_ARGUMENTS[name]
    with pytest.raises(ValueError, match=message):
        make()


BAD_INPUTS = {
    "intersection_depth": (lambda: rnn_cell.IntersectionRNNCell(3), [2, 4], "num_in_proj=3"),
    "glstm_input_depth": (
        lambda: rnn_cell.GLSTMCell(4, number_of_groups=2),
        [2, 3],
        "input depth divisible by number_of_groups=2",
    ),
    "conv_input": (
        lambda: rnn_cell.Conv2DLSTMCell(input_shape=[4, 4, 2], output_channels=2, kernel_shape=[3, 3]),
        [2, 5, 4, 2],
        r"inputs of shape \[batch\] \+ \[4, 4, 2\]",
    ),
    "phased_without_time": (lambda: rnn_cell.PhasedLSTMCell(3), [2, 4], r"inputs \(time, x\)"),
    "highway_depth": (
        lambda: rnn_cell.HighwayWrapper(rnn_cell.GRUCell(3)),
        [2, 4],
        "must be single tensors of one shape",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_inputs_a_cell_cannot_take_are_refused_with_the_reason(name):
    make, input_shape, message = BAD_INPUTS[name]
    with graph_session():
        cell = make()
        with pytest.raises(ValueError, match=message):
            cell(tf.zeros(input_shape), cell.zero_state(2, tf.float32))
