"""A TF1 stateful generator-style loop: names imported from tf.contrib.rnn, the final state fed back.

Spellings: `from tensorflow.contrib.rnn import LSTMCell, LSTMStateTuple, GRUCell`,
`from tensorflow.contrib.rnn.python.ops import lstm_ops`, and
`from tensorflow.contrib import legacy_seq2seq, seq2seq, layers` (only layers used).
Checks: feeding each chunk's final state back as the next chunk's initial state gives the same
outputs as one run over the whole stream.
"""
import numpy as np
import tensorflow as tf
from tensorflow.contrib.rnn import LSTMCell, LSTMStateTuple, GRUCell
from tensorflow.contrib.rnn.python.ops import lstm_ops
from tensorflow.contrib import legacy_seq2seq, seq2seq, layers

BATCH, CHUNK, CHUNKS, FEATURES, UNITS = 2, 3, 3, 4, 5

inputs = tf.placeholder(tf.float32, [BATCH, None, FEATURES])
c_in = tf.placeholder(tf.float32, [BATCH, UNITS])
h_in = tf.placeholder(tf.float32, [BATCH, UNITS])
g_in = tf.placeholder(tf.float32, [BATCH, UNITS])
fused_c, fused_h = tf.placeholder(tf.float32, [BATCH, UNITS]), tf.placeholder(tf.float32, [BATCH, UNITS])
cell = tf.nn.rnn_cell.MultiRNNCell([LSTMCell(UNITS), GRUCell(UNITS), lstm_ops.LSTMBlockCell(UNITS)])
initial_state = (LSTMStateTuple(c_in, h_in), g_in, LSTMStateTuple(fused_c, fused_h))
outputs, final_state = tf.nn.dynamic_rnn(cell, inputs, initial_state=initial_state)
predictions = layers.fully_connected(outputs, 1, activation_fn=None)

stream = np.random.RandomState(1).randn(BATCH, CHUNK * CHUNKS, FEATURES).astype(np.float32)
zeros = np.zeros([BATCH, UNITS], np.float32)
with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    state = ((zeros, zeros), zeros, (zeros, zeros))
    chunks = []
    for i in range(CHUNKS):
        feed = {inputs: stream[:, i * CHUNK:(i + 1) * CHUNK], c_in: state[0][0], h_in: state[0][1],
                g_in: state[1], fused_c: state[2][0], fused_h: state[2][1]}
        chunk, state = sess.run([predictions, final_state], feed)
        chunks.append(chunk)
    whole = sess.run(predictions, {inputs: stream, c_in: zeros, h_in: zeros, g_in: zeros,
                                   fused_c: zeros, fused_h: zeros})
np.testing.assert_allclose(np.concatenate(chunks, axis=1), whole, rtol=1e-5, atol=1e-5)
print("contrib_rnn_names: chunks with the state fed back equal one run over the whole stream")
