"""A TF1 language-model core with variational dropout, written as TF1 LM repositories wrote it (TensorFlow 1.x).

Peephole LSTMCells with a projection and a cell clip, each in a DropoutWrapper with variational_recurrent=True
(one dropout mask per session.run for inputs, states and outputs, shared by every time step), stacked in a
MultiRNNCell and run with tf.nn.dynamic_rnn; the keep probability is a placeholder_with_default. The script
checks its own claims: with keep probability 1 the dynamic run equals tf.nn.static_rnn over the same cell;
below 1, the output units dropped are the same at every step and in every batch row.
"""
import numpy as np
import tensorflow as tf
from tensorflow.contrib.rnn import DropoutWrapper, LSTMCell, MultiRNNCell

BATCH, STEPS, FEATURES, UNITS, PROJ, LAYERS = 3, 6, 4, 8, 6, 2

tf.set_random_seed(0)
inputs = tf.placeholder(tf.float32, [BATCH, STEPS, FEATURES])
keep_prob = tf.placeholder_with_default(1.0, [], name="keep_prob")


def make_cell(layer):
    cell = LSTMCell(UNITS, use_peepholes=True, num_proj=PROJ, cell_clip=3.0, state_is_tuple=True)
    return DropoutWrapper(cell, input_keep_prob=keep_prob, output_keep_prob=keep_prob, state_keep_prob=keep_prob,
                          variational_recurrent=True, input_size=FEATURES if layer == 0 else PROJ,
                          dtype=tf.float32, seed=layer + 1)


cell = MultiRNNCell([make_cell(layer) for layer in range(LAYERS)], state_is_tuple=True)
outputs, state = tf.nn.dynamic_rnn(cell, inputs, dtype=tf.float32)
static_outputs, static_state = tf.nn.static_rnn(cell, tf.unstack(inputs, axis=1), dtype=tf.float32)

x = np.random.RandomState(0).randn(BATCH, STEPS, FEATURES).astype(np.float32)
with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    whole, unrolled = sess.run([outputs, tf.stack(static_outputs, axis=1)], {inputs: x})
    first = sess.run(outputs, {inputs: x, keep_prob: 0.5})

np.testing.assert_allclose(whole, unrolled, rtol=1e-5, atol=1e-6)
dropped = first == 0
assert dropped.any() and not dropped.all(), dropped
assert (dropped == dropped[:1, :1]).all(), "one output mask for every step and row"
print("variational_dropout: dynamic equals static at keep 1; %d of %d output units dropped at every step"
      % (dropped[0, 0].sum(), PROJ))
