"""A TF1 bidirectional encoder from a program that imports TensorFlow under another name (TensorFlow 1.x).

Spellings: `import tensorflow as tf1` (tf1.contrib.rnn.GRUCell, tf1.nn.dynamic_rnn,
tf1.nn.bidirectional_dynamic_rnn, tf1.Session, ...) and `rnn_cell = tf1.nn.rnn_cell` then `rnn_cell.LSTMCell`.
Checks: the forward outputs equal dynamic_rnn of the forward cell, and the backward outputs equal
dynamic_rnn of the backward cell over the reversed sequences, reversed back.
"""
import numpy as np
import tensorflow as tf1

rnn_cell = tf1.nn.rnn_cell
BATCH, STEPS, FEATURES, UNITS = 2, 5, 3, 4

inputs = tf1.placeholder(tf1.float32, [BATCH, STEPS, FEATURES])
lengths = tf1.placeholder(tf1.int32, [BATCH])
forward, backward = rnn_cell.LSTMCell(UNITS), tf1.contrib.rnn.GRUCell(UNITS)
(fw, bw), _ = tf1.nn.bidirectional_dynamic_rnn(forward, backward, inputs, sequence_length=lengths,
                                                dtype=tf1.float32)
fw_alone, _ = tf1.nn.dynamic_rnn(forward, inputs, sequence_length=lengths, dtype=tf1.float32, scope="fw_alone")
reversed_inputs = tf1.reverse_sequence(inputs, lengths, seq_axis=1, batch_axis=0)
bw_reversed, _ = tf1.nn.dynamic_rnn(backward, reversed_inputs, sequence_length=lengths, dtype=tf1.float32,
                                    scope="bw_alone")
bw_alone = tf1.reverse_sequence(bw_reversed, lengths, seq_axis=1, batch_axis=0)

feed = {inputs: np.random.RandomState(3).randn(BATCH, STEPS, FEATURES), lengths: [STEPS, 3]}
with tf1.Session() as sess:
    sess.run(tf1.global_variables_initializer())
    results = sess.run([fw, fw_alone, bw, bw_alone], feed)
np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(results[2], results[3], rtol=1e-5, atol=1e-6)
print("tf1_alias: the bidirectional outputs equal each direction run on its own")
