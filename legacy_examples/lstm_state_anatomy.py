"""Recipe 5: the LSTM state anatomy: what c and m/h are, and state_is_tuple True vs False.

An LSTMCell's state is two vectors per row: the cell state c (the memory, additive, unbounded)
and the hidden state h, which TF1 calls m and which is also the cell's output. One step
(TF1's LSTMCell, no peepholes, kernel over concat([x, m_prev])):

    i, j, f, o = split(concat([x, m_prev]) @ kernel + bias, 4)
    c = sigmoid(f + forget_bias) * c_prev + sigmoid(i) * tanh(j)
    m = sigmoid(o) * tanh(c)                  # with num_proj: m = (sigmoid(o) * tanh(c)) @ projection
    output = m,  state = LSTMStateTuple(c, m)          # state_is_tuple=True (the default)
                 state = concat([c, m], axis=1)        # state_is_tuple=False (TF1's old layout)

Checks, against these NumPy equations over several steps: outputs == m at every step, the final
state == (c, m); with num_proj, m has num_proj units and c keeps num_units; with
state_is_tuple=False and the same weights the state is exactly concat([c, m]) and
tfstate.state_to_tuple / state_to_concat convert between the layouts; |m| < 1 (c is not squashed).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import tfstate

tf.compat.v1.disable_eager_execution()

BATCH, STEPS, FEATURES, UNITS, PROJ = 3, 5, 4, 6, 2
TOL = dict(rtol=1e-5, atol=1e-5)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_lstm(inputs, c, m, kernel, bias, projection=None, forget_bias=1.0):
    """TF1's LSTMCell equations; returns (m at every step [batch, time, m], final c, final m)."""
    ms = []
    for t in range(inputs.shape[1]):
        i, j, f, o = np.split(np.concatenate([inputs[:, t], m], axis=1) @ kernel + bias, 4, axis=1)
        c = sigmoid(f + forget_bias) * c + sigmoid(i) * np.tanh(j)
        m = sigmoid(o) * np.tanh(c)
        if projection is not None:
            m = m @ projection
        ms.append(m)
    return np.stack(ms, axis=1), c, m


def main():
    rng = np.random.RandomState(0)
    inputs = 2 * rng.randn(BATCH, STEPS, FEATURES).astype(np.float32)
    c0 = rng.randn(BATCH, UNITS).astype(np.float32)
    m0 = np.tanh(rng.randn(BATCH, UNITS)).astype(np.float32)
    p0 = np.tanh(rng.randn(BATCH, PROJ)).astype(np.float32)

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, [None, None, FEATURES], name="x")
        c_in = tf.compat.v1.placeholder(tf.float32, [None, UNITS])
        m_in = tf.compat.v1.placeholder(tf.float32, [None, UNITS])
        p_in = tf.compat.v1.placeholder(tf.float32, [None, PROJ])

        tuple_cell = tfstate.LSTMCell(UNITS)  # state_is_tuple=True
        tuple_out, tuple_state = tf.compat.v1.nn.dynamic_rnn(
            tuple_cell, x, initial_state=tfstate.LSTMStateTuple(c_in, m_in), scope="tuple"
        )
        proj_cell = tfstate.LSTMCell(UNITS, num_proj=PROJ)
        proj_out, proj_state = tf.compat.v1.nn.dynamic_rnn(
            proj_cell, x, initial_state=tfstate.LSTMStateTuple(c_in, p_in), scope="proj"
        )
        concat_cell = tfstate.LSTMCell(UNITS, state_is_tuple=False)
        concat_out, concat_state = tf.compat.v1.nn.dynamic_rnn(
            concat_cell, x, initial_state=tf.concat([c_in, m_in], axis=1), scope="concat"
        )
        as_tuple = tfstate.state_to_tuple(concat_state, concat_cell)
        weights = {v.op.name: v for v in tf.compat.v1.trainable_variables()}
        same_weights = tf.group(
            *[weights[f"concat/lstm_cell/{n}"].assign(weights[f"tuple/lstm_cell/{n}"]) for n in ("kernel", "bias")]
        )
        assert tuple_cell.state_size == tfstate.LSTMStateTuple(UNITS, UNITS)
        assert proj_cell.state_size == tfstate.LSTMStateTuple(UNITS, PROJ) and proj_cell.output_size == PROJ
        assert concat_cell.state_size == 2 * UNITS

        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(same_weights)
            w = sess.run(weights)
            feed = {x: inputs, c_in: c0, m_in: m0, p_in: p0}
            got_tuple_out, got_tuple, got_proj_out, got_proj, got_concat_out, got_concat, got_as_tuple = sess.run(
                [tuple_out, tuple_state, proj_out, proj_state, concat_out, concat_state, as_tuple], feed
            )

    # state_is_tuple=True: outputs are m at every step, the state is (c, m) of the last step
    ms, c, m = numpy_lstm(inputs, c0, m0, w["tuple/lstm_cell/kernel"], w["tuple/lstm_cell/bias"])
    np.testing.assert_allclose(got_tuple_out, ms, **TOL)
    np.testing.assert_allclose(got_tuple.c, c, **TOL)
    np.testing.assert_allclose(got_tuple.h, m, **TOL)
    assert np.abs(ms).max() < 1, "m = sigmoid(o) * tanh(c) is bounded by 1"

    # num_proj: m is projected to PROJ units, c keeps UNITS; the kernel reads the projected m
    ms_p, c_p, m_p = numpy_lstm(
        inputs,
        c0,
        p0,
        w["proj/lstm_cell/kernel"],
        w["proj/lstm_cell/bias"],
        projection=w["proj/lstm_cell/projection/kernel"],
    )
    assert got_proj.c.shape == (BATCH, UNITS) and got_proj.h.shape == (BATCH, PROJ)
    np.testing.assert_allclose(got_proj_out, ms_p, **TOL)
    np.testing.assert_allclose(got_proj.c, c_p, **TOL)
    np.testing.assert_allclose(got_proj.h, m_p, **TOL)

    # state_is_tuple=False, same weights: the state is concat([c, m]); outputs are the same m
    assert got_concat.shape == (BATCH, 2 * UNITS)
    np.testing.assert_allclose(got_concat, np.concatenate([c, m], axis=1), **TOL)
    np.testing.assert_allclose(got_concat_out, ms, **TOL)
    np.testing.assert_allclose(got_as_tuple.c, c, **TOL)
    np.testing.assert_allclose(got_as_tuple.h, m, **TOL)
    np.testing.assert_array_equal(tfstate.state_to_concat(got_tuple), np.concatenate([got_tuple.c, got_tuple.h], 1))

    print(
        f"lstm_state_anatomy: c (memory, max |c| {np.abs(c).max():.2f}) and "
        f"m/h (output, max |m| {np.abs(ms).max():.2f} < 1) "
        f"== NumPy equations over {STEPS} steps; num_proj={PROJ} gives m [{BATCH}, {PROJ}], c [{BATCH}, {UNITS}]; "
        "state_is_tuple=False state == concat([c, m]); state_to_tuple/state_to_concat convert"
    )


if __name__ == "__main__":
    main()
