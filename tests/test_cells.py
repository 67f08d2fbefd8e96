"""tfstate cells against the TF1 legacy cells kept in tf_keras: same variable names, same numbers."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
from conftest import CELLS, assert_nested_close, graph_session, load_variables, randomize_variables
from tf_keras.src.layers.rnn import legacy_cell_wrappers, legacy_cells

import tfstate


class LegacyTF1:
    """The TF1 `rnn_cell` namespace as tf_keras keeps it (the oracle)."""

    BasicRNNCell = legacy_cells.BasicRNNCell
    BasicLSTMCell = legacy_cells.BasicLSTMCell
    LSTMCell = legacy_cells.LSTMCell
    GRUCell = legacy_cells.GRUCell
    MultiRNNCell = legacy_cells.MultiRNNCell
    DropoutWrapper = legacy_cell_wrappers.DropoutWrapper
    ResidualWrapper = legacy_cell_wrappers.ResidualWrapper
    DeviceWrapper = legacy_cell_wrappers.DeviceWrapper


BATCH, TIME, DEPTH = 3, 5, 4


LENGTHS = [5, 2, 0]


def _dynamic(time_major=False, lengths=None):
    def run(make_cell, inputs, dtype):
        if time_major:
            inputs = tf.transpose(inputs, [1, 0, 2])
        outputs, state = tf.compat.v1.nn.dynamic_rnn(
            make_cell(), inputs, sequence_length=lengths, time_major=time_major, dtype=dtype
        )
        return outputs, state

    return run


def _static(make_cell, inputs, dtype):
    return tf.compat.v1.nn.static_rnn(make_cell(), tf.unstack(inputs, axis=1), sequence_length=LENGTHS, dtype=dtype)


def _bidirectional(make_cell, inputs, dtype):
    return tf.compat.v1.nn.bidirectional_dynamic_rnn(
        make_cell(), make_cell(), inputs, sequence_length=LENGTHS, dtype=dtype
    )


RUNNERS = {
    "dynamic": _dynamic(),
    "dynamic_time_major": _dynamic(time_major=True),
    "dynamic_sequence_length": _dynamic(lengths=LENGTHS),
    "dynamic_time_major_sequence_length": _dynamic(time_major=True, lengths=LENGTHS),
    "static": _static,
    "bidirectional": _bidirectional,
}


def run_in(namespace, cell_name, runner, dtype, inputs, weights=None):
    """Builds `runner` over a fresh cell from `namespace`; returns (variable names, weights, results)."""
    with graph_session() as sess:
        x = tf.constant(inputs)
        results = runner(lambda: CELLS[cell_name](namespace), x, dtype)
        names = [v.name for v in tf.compat.v1.global_variables()]
        sess.run(tf.compat.v1.global_variables_initializer())
        if weights is None:
            weights = randomize_variables(sess)
        else:
            load_variables(sess, weights)
        return names, weights, sess.run(results)


@pytest.mark.parametrize("runner", sorted(RUNNERS))
@pytest.mark.parametrize("cell_name", sorted(CELLS))
def test_cell_matches_tf1_legacy_cell_float32(cell_name, runner, rng):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    names, weights, expected = run_in(LegacyTF1, cell_name, RUNNERS[runner], tf.float32, inputs)
    tf_names, _, actual = run_in(tfstate.rnn_cell, cell_name, RUNNERS[runner], tf.float32, inputs, weights)
    assert tf_names == names
    assert_nested_close(actual, expected)


@pytest.mark.parametrize("runner", ["dynamic_sequence_length", "dynamic_time_major", "static"])
@pytest.mark.parametrize("cell_name", ["gru", "lstm_peepholes_clip", "lstm_projection_concat_state", "multi"])
def test_cell_matches_tf1_legacy_cell_float64(cell_name, runner, rng):
    inputs = rng.randn(BATCH, TIME, DEPTH)
    names, weights, expected = run_in(LegacyTF1, cell_name, RUNNERS[runner], tf.float64, inputs)
    tf_names, _, actual = run_in(tfstate.rnn_cell, cell_name, RUNNERS[runner], tf.float64, inputs, weights)
    assert tf_names == names
    assert all(w.dtype == np.float64 for w in weights.values())
    assert_nested_close(actual, expected, atol=1e-12)


def test_dropout_wrapper_drops_at_the_requested_rate_and_rescales():
    with graph_session() as sess:
        x = tf.ones([2000, 1])
        cell = tfstate.rnn_cell.DropoutWrapper(
            tfstate.rnn_cell.BasicRNNCell(1, activation=tf.identity), input_keep_prob=0.25, seed=5
        )
        output, _ = cell(x, tf.zeros([2000, 1]))
        kernel, bias = cell.variables
        sess.run(tf.compat.v1.global_variables_initializer())
        kernel.load([[1.0], [0.0]], sess)
        bias.load([0.0], sess)
        dropped = sess.run(output)
    kept = dropped[dropped != 0]
    np.testing.assert_allclose(kept, 4.0)
    assert 0.2 < kept.size / dropped.size < 0.3


def test_state_dropout_never_touches_the_lstm_cell_state():
    with graph_session() as sess:
        state = tfstate.LSTMStateTuple(tf.ones([500, 4]), tf.ones([500, 4]))
        inner = tfstate.LSTMCell(4)
        _, plain = inner(tf.ones([500, 2]), state)
        _, dropped = tfstate.rnn_cell.DropoutWrapper(inner, state_keep_prob=0.5, seed=1)(tf.ones([500, 2]), state)
        sess.run(tf.compat.v1.global_variables_initializer())
        plain, dropped = sess.run([plain, dropped])
    np.testing.assert_array_equal(dropped.c, plain.c)
    assert 0.4 < np.mean(dropped.h == 0) < 0.6
    np.testing.assert_allclose(dropped.h[dropped.h != 0], 2 * plain.h[dropped.h != 0], rtol=1e-6)


def _variational_dropout_run(namespace, inputs, weights=None):
    """A 2-layer LSTM with TF1's variational dropout on inputs, states and outputs, over `inputs`, run twice."""

    def make_cell():
        layers = [
            namespace.DropoutWrapper(
                namespace.LSTMCell(4),
                input_keep_prob=0.6,
                output_keep_prob=0.7,
                state_keep_prob=0.5,
                variational_recurrent=True,
                input_size=DEPTH if layer == 0 else 4,
                dtype=tf.float32,
                seed=7 + layer,
            )
            for layer in range(2)
        ]
        return namespace.MultiRNNCell(layers)

    return run_in(namespace, None, lambda _, x, dtype: _dynamic()(make_cell, x, dtype), tf.float32, inputs, weights)


def test_variational_dropout_draws_tf1s_masks_once_per_run_for_every_step_and_row(rng):
    inputs = np.ones([BATCH, TIME, DEPTH], np.float32)
    names, weights, expected = _variational_dropout_run(LegacyTF1, inputs)
    tf_names, _, (outputs, state) = _variational_dropout_run(tfstate.rnn_cell, inputs, weights)
    assert tf_names == names
    assert_nested_close((outputs, state), expected)
    dropped = outputs == 0  # one output mask, shared by every step and batch row
    assert dropped.any() and not dropped.all()
    np.testing.assert_array_equal(dropped, np.broadcast_to(dropped[:1, :1], dropped.shape))


def test_variational_dropout_without_dtype_or_input_size_names_what_it_needs():
    with graph_session():
        with pytest.raises(ValueError, match="needs dtype, the dtype of its masks; got dtype=None"):
            tfstate.rnn_cell.DropoutWrapper(tfstate.LSTMCell(4), state_keep_prob=0.5, variational_recurrent=True)
        with pytest.raises(ValueError, match="needs input_size, the depth of the cell's inputs; got input_size=None"):
            tfstate.rnn_cell.DropoutWrapper(
                tfstate.LSTMCell(4), input_keep_prob=0.5, variational_recurrent=True, dtype=tf.float32
            )


def test_cell_reuses_its_variables_on_every_later_call(rng):
    with graph_session() as sess:
        cell = tfstate.LSTMCell(4)
        x = tf.constant(rng.randn(2, 3, 3).astype(np.float32))
        first, _ = tf.compat.v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        second, _ = tf.compat.v1.nn.dynamic_rnn(cell, x, dtype=tf.float32, scope="elsewhere")
        names = [v.name for v in tf.compat.v1.global_variables()]
        sess.run(tf.compat.v1.global_variables_initializer())
        a, b = sess.run([first, second])
    assert names == ["rnn/lstm_cell/kernel:0", "rnn/lstm_cell/bias:0"]
    np.testing.assert_array_equal(a, b)


def test_two_cells_in_one_scope_get_uniquified_names_as_in_tf1():
    with graph_session():
        x = tf.zeros([1, 2])
        with tf.compat.v1.variable_scope("model"):
            tfstate.GRUCell(2)(x, tf.zeros([1, 2]))
            tfstate.GRUCell(2)(x, tf.zeros([1, 2]))
            tfstate.LSTMCell(2, name="named")(x, tfstate.LSTMStateTuple(tf.zeros([1, 2]), tf.zeros([1, 2])))
        names = [v.op.name for v in tf.compat.v1.global_variables()]
    assert names == [
        "model/gru_cell/gates/kernel",
        "model/gru_cell/gates/bias",
        "model/gru_cell/candidate/kernel",
        "model/gru_cell/candidate/bias",
        "model/gru_cell_1/gates/kernel",
        "model/gru_cell_1/gates/bias",
        "model/gru_cell_1/candidate/kernel",
        "model/gru_cell_1/candidate/bias",
        "model/named/kernel",
        "model/named/bias",
    ]


def test_tf1_checkpoint_restores_into_tfstate_cells(tmp_path, rng):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)

    def build(m):
        cell = m.MultiRNNCell([m.LSTMCell(6, num_proj=3, use_peepholes=True), m.GRUCell(4), m.BasicLSTMCell(5)])
        return tf.compat.v1.nn.dynamic_rnn(cell, tf.constant(inputs), sequence_length=LENGTHS, dtype=tf.float32)

    path = str(tmp_path / "tf1.ckpt")
    with graph_session() as sess:
        results = build(LegacyTF1)
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess)
        expected = sess.run(results)
        tf.compat.v1.train.Saver().save(sess, path)
    with graph_session() as sess:
        results = build(tfstate.rnn_cell)
        tf.compat.v1.train.Saver().restore(sess, path)
        actual = sess.run(results)
    assert_nested_close(actual, expected)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_lstm_step(x, c, m, w, forget_bias, cell_clip=None, proj_clip=None):
    """TF1's LSTMCell equations in NumPy (gate order i, j, f, o)."""
    z = np.concatenate([x, m], 1) @ w["kernel"] + w["bias"]
    i, j, f, o = np.split(z, 4, axis=1)
    peep = "w_f_diag" in w
    c = _sigmoid(f + forget_bias + (w["w_f_diag"] * c if peep else 0)) * c + _sigmoid(
        i + (w["w_i_diag"] * c if peep else 0)
    ) * np.tanh(j)
    if cell_clip is not None:
        c = np.clip(c, -cell_clip, cell_clip)
    m = _sigmoid(o + (w["w_o_diag"] * c if peep else 0)) * np.tanh(c)
    if "projection/kernel" in w:
        m = m @ w["projection/kernel"]
        if proj_clip is not None:
            m = np.clip(m, -proj_clip, proj_clip)
    return c, m


def numpy_gru_step(x, h, w):
    """TF1's GRUCell equations in NumPy."""
    r, u = np.split(_sigmoid(np.concatenate([x, h], 1) @ w["gates/kernel"] + w["gates/bias"]), 2, axis=1)
    candidate = np.tanh(np.concatenate([x, r * h], 1) @ w["candidate/kernel"] + w["candidate/bias"])
    return u * h + (1 - u) * candidate


def _short_names(weights, prefix):
    return {name[len(prefix) : -2]: value for name, value in weights.items() if name.startswith(prefix)}


def test_lstm_and_gru_equal_a_numpy_derivation_of_the_equations(rng):
    inputs = rng.randn(BATCH, TIME, DEPTH)
    with graph_session() as sess:
        cell = tfstate.MultiRNNCell(
            [
                tfstate.LSTMCell(6, num_proj=3, use_peepholes=True, cell_clip=0.4, proj_clip=0.25, forget_bias=0.3),
                tfstate.GRUCell(4),
            ]
        )
        outputs, state = tf.compat.v1.nn.dynamic_rnn(cell, tf.constant(inputs), dtype=tf.float64)
        sess.run(tf.compat.v1.global_variables_initializer())
        weights = randomize_variables(sess, scale=0.9)
        outputs, state = sess.run([outputs, state])
    lstm = _short_names(weights, "rnn/multi_rnn_cell/cell_0/lstm_cell/")
    gru = _short_names(weights, "rnn/multi_rnn_cell/cell_1/gru_cell/")
    c, m, h = np.zeros((BATCH, 6)), np.zeros((BATCH, 3)), np.zeros((BATCH, 4))
    for t in range(TIME):
        c, m = numpy_lstm_step(inputs[:, t], c, m, lstm, forget_bias=0.3, cell_clip=0.4, proj_clip=0.25)
        h = numpy_gru_step(m, h, gru)
        np.testing.assert_allclose(outputs[:, t], h, atol=1e-12)
    np.testing.assert_allclose(state[0].c, c, atol=1e-12)
    np.testing.assert_allclose(state[0].h, m, atol=1e-12)
    np.testing.assert_allclose(state[1], h, atol=1e-12)


def test_unknown_input_depth_is_a_clear_error():
    with graph_session():
        x = tf.compat.v1.placeholder(tf.float32, [None, None])
        with pytest.raises(ValueError, match=r"known depth; got inputs of shape \(None, None\)"):
            tfstate.GRUCell(3)(x, tf.zeros([2, 3]))


def test_state_of_the_wrong_structure_is_a_clear_error():
    with graph_session():
        x = tf.zeros([2, 3])
        with pytest.raises(
            ValueError,
            match=r"The state given to LSTMCell must be structured like the state_size "
            r"LSTMStateTuple\(c=4, h=4\); got",
        ):
            tfstate.LSTMCell(4)(x, tf.zeros([2, 8]))
        with pytest.raises(ValueError, match=r"The state given to GRUCell must have parts of shape \[batch\] \+ \[4\]"):
            tfstate.GRUCell(4)(x, tf.zeros([2, 5]))


def test_eager_mode_is_a_clear_error():
    assert tf.executing_eagerly()
    with pytest.raises(RuntimeError, match=r"LSTMCell builds a TF1 \(session\) graph.*disable_eager_execution"):
        tfstate.LSTMCell(2)(tf.zeros([1, 2]), tfstate.LSTMStateTuple(tf.zeros([1, 2]), tf.zeros([1, 2])))


def test_sharded_lstm_variables_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="partitioned variables"):
        tfstate.LSTMCell(4, num_unit_shards=2)


def test_cells_work_under_raw_rnn_as_under_dynamic_rnn(rng):
    inputs = rng.randn(TIME, BATCH, DEPTH).astype(np.float32)
    with graph_session() as sess:
        cell = CELLS["multi"](tfstate.rnn_cell)
        expected, _ = tf.compat.v1.nn.dynamic_rnn(cell, tf.constant(inputs), time_major=True, dtype=tf.float32)
        inputs_ta = tf.TensorArray(tf.float32, size=TIME).unstack(inputs)

        def loop_fn(time, cell_output, cell_state, loop_state):
            state = cell.zero_state(BATCH, tf.float32) if cell_output is None else cell_state
            finished = time >= TIME
            next_input = tf.cond(finished, lambda: tf.zeros([BATCH, DEPTH]), lambda: inputs_ta.read(time))
            return finished, next_input, state, cell_output, None

        outputs_ta, _, _ = tf.compat.v1.nn.raw_rnn(cell, loop_fn)
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess)
        expected, actual = sess.run([expected, outputs_ta.stack()])
    np.testing.assert_allclose(actual, expected, atol=1e-6)


def test_initializers_and_default_biases_match_tf1(rng):
    def build(m):
        with graph_session() as sess:
            cell = m.MultiRNNCell(
                [
                    m.LSTMCell(4, use_peepholes=True, num_proj=2, initializer=tf.compat.v1.constant_initializer(0.3)),
                    m.GRUCell(3),
                    m.GRUCell(
                        3,
                        kernel_initializer=tf.compat.v1.constant_initializer(-0.2),
                        bias_initializer=tf.compat.v1.constant_initializer(0.1),
                    ),
                    m.BasicLSTMCell(2),
                ]
            )
            tf.compat.v1.nn.dynamic_rnn(cell, tf.zeros([1, 2, 3]), dtype=tf.float32)
            sess.run(tf.compat.v1.global_variables_initializer())
            return {
                v.op.name: sess.run(v)
                for v in tf.compat.v1.global_variables()
                if "bias" in v.op.name or "cell_0" in v.op.name or "cell_2" in v.op.name
            }

    expected, actual = build(LegacyTF1), build(tfstate.rnn_cell)
    assert sorted(actual) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def _tf1_style_cells(base):
    """Two custom cells written the TF1 way against `base` (TF1's RNNCell or tfstate's)."""

    class ScaledRNNCell(base):
        def __init__(self, units):
            super().__init__()
            self.units = units

        @property
        def state_size(self):
            return self.units

        @property
        def output_size(self):
            return self.units

        def build(self, inputs_shape):
            self.kernel = self.add_weight("kernel", [inputs_shape[-1] + self.units, self.units])
            self.built = True

        def call(self, inputs, state):
            output = tf.tanh(tf.matmul(tf.concat([inputs, state], 1), self.kernel))
            return output, output

    class GetVariableCell(base):
        @property
        def state_size(self):
            return 3

        @property
        def output_size(self):
            return 3

        def call(self, inputs, state):
            weights = tf.compat.v1.get_variable("weights", [inputs.shape[-1] + 3, 3])
            output = tf.sigmoid(tf.matmul(tf.concat([inputs, state], 1), weights))
            return output, output

    return ScaledRNNCell, GetVariableCell


def test_tf1_style_custom_cells_with_build_or_get_variable_match_tf1(rng):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)

    def run(namespace, base, weights=None):
        scaled, get_variable = _tf1_style_cells(base)
        with graph_session() as sess:
            cell = namespace.MultiRNNCell([scaled(5), get_variable()])
            results = tf.compat.v1.nn.dynamic_rnn(cell, tf.constant(inputs), sequence_length=LENGTHS, dtype=tf.float32)
            names = [v.name for v in tf.compat.v1.global_variables()]
            sess.run(tf.compat.v1.global_variables_initializer())
            weights = randomize_variables(sess) if weights is None else (load_variables(sess, weights) or weights)
            return names, weights, sess.run(results)

    names, weights, expected = run(LegacyTF1, legacy_cells.RNNCell)
    tf_names, _, actual = run(tfstate.rnn_cell, tfstate.rnn_cell.RNNCell, weights)
    assert (
        tf_names
        == names
        == [
            "rnn/multi_rnn_cell/cell_0/scaled_rnn_cell/kernel:0",
            "rnn/multi_rnn_cell/cell_1/get_variable_cell/weights:0",
        ]
    )
    assert_nested_close(actual, expected)


def test_a_custom_cell_without_call_names_what_is_missing():
    class Incomplete(tfstate.rnn_cell.RNNCell):
        state_size = output_size = 2

    with graph_session():
        with pytest.raises(NotImplementedError, match=r"Incomplete must define call\(inputs, state\)"):
            Incomplete()(tf.zeros([1, 2]), tf.zeros([1, 2]))


def test_multi_rnn_cell_of_one_cell_object_warns_once_that_its_layers_share_weights(rng):
    message = "At least two cells provided to MultiRNNCell are the same object and will share weights."
    cell = tfstate.GRUCell(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's default: once per call site
        for _ in range(3):
            stacked = tfstate.MultiRNNCell([cell] * 2)
        tfstate.MultiRNNCell([tfstate.GRUCell(3), tfstate.GRUCell(3)])
    assert [str(warning.message) for warning in caught] == [message]
    with graph_session():
        tf.compat.v1.nn.dynamic_rnn(stacked, tf.constant(rng.randn(2, 4, 3).astype(np.float32)), dtype=tf.float32)
        assert [v.op.name for v in tf.compat.v1.global_variables()] == [
            f"rnn/multi_rnn_cell/cell_0/gru_cell/{name}"
            for name in ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")
        ]
