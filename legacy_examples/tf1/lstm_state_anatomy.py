"""Recipe 5, TF1 form: the LSTM state anatomy: what c and m/h are, state_is_tuple True vs False.

TF1's LSTMCell state is the cell state c and the hidden state m (h), which is also the output:

    i, j, f, o = split(concat([x, m_prev]) @ kernel + bias, 4)
    c = sigmoid(f + forget_bias) * c_prev + sigmoid(i) * tanh(j)
    m = sigmoid(o) * tanh(c)                  # with num_proj: m = (sigmoid(o) * tanh(c)) @ projection
    state = LSTMStateTuple(c, m)  (state_is_tuple=True)   or   concat([c, m], 1)  (state_is_tuple=False)

Checks against these NumPy equations; copies the tuple cell's weights into the concatenated one
to show its state is exactly concat([c, m]). `tfstate upgrade` turns this into a script that runs
on current TensorFlow; ../lstm_state_anatomy.py is the same recipe with tfstate.
"""
import numpy as np
import tensorflow as tf

BATCH, STEPS, FEATURES, UNITS, PROJ = 3, 5, 4, 6, 2


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_lstm(inputs, c, m, kernel, bias, projection=None, forget_bias=1.0):
    ms = []
    for t in range(inputs.shape[1]):
        i, j, f, o = np.split(np.concatenate([inputs[:, t], m], axis=1).dot(kernel) + bias, 4, axis=1)
        c = sigmoid(f + forget_bias) * c + sigmoid(i) * np.tanh(j)
        m = sigmoid(o) * np.tanh(c)
        if projection is not None:
            m = m.dot(projection)
        ms.append(m)
    return np.stack(ms, axis=1), c, m


rng = np.random.RandomState(0)
inputs = 2 * rng.randn(BATCH, STEPS, FEATURES).astype(np.float32)
c0 = rng.randn(BATCH, UNITS).astype(np.float32)
m0 = np.tanh(rng.randn(BATCH, UNITS)).astype(np.float32)
p0 = np.tanh(rng.randn(BATCH, PROJ)).astype(np.float32)

x = tf.placeholder(tf.float32, [None, None, FEATURES])
c_in = tf.placeholder(tf.float32, [None, UNITS])
m_in = tf.placeholder(tf.float32, [None, UNITS])
p_in = tf.placeholder(tf.float32, [None, PROJ])

tuple_cell = tf.nn.rnn_cell.LSTMCell(UNITS)
tuple_out, tuple_state = tf.nn.dynamic_rnn(tuple_cell, x, initial_state=tf.nn.rnn_cell.LSTMStateTuple(c_in, m_in),
                                           scope="tuple")
proj_cell = tf.nn.rnn_cell.LSTMCell(UNITS, num_proj=PROJ)
proj_out, proj_state = tf.nn.dynamic_rnn(proj_cell, x, initial_state=tf.nn.rnn_cell.LSTMStateTuple(c_in, p_in),
                                         scope="proj")
concat_cell = tf.nn.rnn_cell.LSTMCell(UNITS, state_is_tuple=False)
concat_out, concat_state = tf.nn.dynamic_rnn(concat_cell, x, initial_state=tf.concat([c_in, m_in], axis=1),
                                             scope="concat")
weights = dict((v.op.name, v) for v in tf.trainable_variables())
same_weights = tf.group(*[tf.assign(weights["concat/lstm_cell/" + n], weights["tuple/lstm_cell/" + n])
                          for n in ("kernel", "bias")])

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    sess.run(same_weights)
    w = sess.run(weights)
    feed = {x: inputs, c_in: c0, m_in: m0, p_in: p0}
    got_tuple_out, got_tuple, got_proj_out, got_proj, got_concat_out, got_concat = sess.run(
        [tuple_out, tuple_state, proj_out, proj_state, concat_out, concat_state], feed)

ms, c, m = numpy_lstm(inputs, c0, m0, w["tuple/lstm_cell/kernel"], w["tuple/lstm_cell/bias"])
np.testing.assert_allclose(got_tuple_out, ms, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(got_tuple.c, c, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(got_tuple.h, m, rtol=1e-5, atol=1e-5)
assert np.abs(ms).max() < 1

ms_p, c_p, m_p = numpy_lstm(inputs, c0, p0, w["proj/lstm_cell/kernel"], w["proj/lstm_cell/bias"],
                            projection=w["proj/lstm_cell/projection/kernel"])
assert got_proj.c.shape == (BATCH, UNITS) and got_proj.h.shape == (BATCH, PROJ)
np.testing.assert_allclose(got_proj_out, ms_p, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(got_proj.c, c_p, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(got_proj.h, m_p, rtol=1e-5, atol=1e-5)

assert got_concat.shape == (BATCH, 2 * UNITS)
np.testing.assert_allclose(got_concat, np.concatenate([c, m], axis=1), rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(got_concat_out, ms, rtol=1e-5, atol=1e-5)
print("lstm_state_anatomy (TF1 form): c and m == NumPy equations over %d steps; num_proj gives m [%d, %d]; "
      "state_is_tuple=False state == concat([c, m])" % (STEPS, BATCH, PROJ))
