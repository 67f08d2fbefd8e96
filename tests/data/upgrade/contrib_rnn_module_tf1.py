"""A TF1 sequence classifier built with tf.contrib.rnn imported as a module (TensorFlow 1.x).

Spellings: `from tensorflow.contrib import rnn` (rnn.BasicLSTMCell, rnn.MultiRNNCell, rnn.static_rnn,
rnn.static_bidirectional_rnn, rnn.LSTMStateTuple) and `import tensorflow.contrib.rnn as contrib_rnn`.
Checks: the static unroll equals tf.nn.dynamic_rnn with the same cell, and training lowers the loss.
"""
import numpy as np
import tensorflow as tf
from tensorflow.contrib import rnn
import tensorflow.contrib.rnn as contrib_rnn

BATCH, STEPS, FEATURES, UNITS = 4, 5, 3, 6

inputs = tf.placeholder(tf.float32, [BATCH, STEPS, FEATURES])
labels = tf.placeholder(tf.int32, [BATCH])
sequence = tf.unstack(inputs, STEPS, axis=1)

cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(UNITS), contrib_rnn.GRUCell(UNITS)])
static_outputs, static_state = rnn.static_rnn(cell, sequence, dtype=tf.float32)
dynamic_outputs, dynamic_state = tf.nn.dynamic_rnn(cell, inputs, dtype=tf.float32)
assert isinstance(static_state[0], rnn.LSTMStateTuple)

forward, backward = rnn.LSTMCell(UNITS), contrib_rnn.LSTMCell(UNITS)
both, _, _ = rnn.static_bidirectional_rnn(forward, backward, sequence, dtype=tf.float32, scope="bidirectional")
logits = tf.layers.dense(tf.concat([static_outputs[-1], both[-1]], 1), 2)
loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
train = tf.train.AdamOptimizer(0.05).minimize(loss)

data = np.random.RandomState(0).randn(BATCH, STEPS, FEATURES).astype(np.float32)
feed = {inputs: data, labels: (data.sum(axis=(1, 2)) > 0).astype(np.int32)}
with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    static, dynamic = sess.run([tf.stack(static_outputs, 1), dynamic_outputs], feed)
    np.testing.assert_allclose(static, dynamic, rtol=1e-5, atol=1e-6)
    first = sess.run(loss, feed)
    for _ in range(15):
        sess.run(train, feed)
    assert sess.run(loss, feed) < first
print("contrib_rnn_module: the static unroll equals dynamic_rnn and training lowers the loss")
