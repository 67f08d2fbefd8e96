"""A TF1 variable-length encoder written against TensorFlow's implementation modules (TensorFlow 1.x).

Spellings: `from tensorflow.python.ops import rnn, rnn_cell` (rnn.dynamic_rnn, rnn_cell.LSTMCell),
`from tensorflow.python.ops.rnn_cell import GRUCell`, `from tensorflow.nn import rnn_cell as nn_rnn_cell`;
static shapes read as `x.shape[i].value`, `x.get_shape()[i].value` and `get_shape().as_list()`.
Checks: outputs past each sequence's length are zero and the final state is the last valid output.
"""
import numpy as np
import tensorflow as tf
from tensorflow.python.ops import rnn, rnn_cell
from tensorflow.python.ops.rnn_cell import GRUCell
from tensorflow.nn import rnn_cell as nn_rnn_cell

BATCH, STEPS, FEATURES, UNITS = 3, 6, 4, 5

inputs = tf.placeholder(tf.float32, [BATCH, STEPS, FEATURES])
lengths = tf.placeholder(tf.int32, [BATCH])
depth = inputs.get_shape()[2].value
cells = [rnn_cell.LSTMCell(UNITS), nn_rnn_cell.DropoutWrapper(GRUCell(UNITS), output_keep_prob=1.0)]
cell = rnn_cell.MultiRNNCell(cells)
outputs, state = rnn.dynamic_rnn(cell, inputs, sequence_length=lengths, dtype=tf.float32)
units = outputs.shape[-1].value
assert (depth, units) == (FEATURES, UNITS), (depth, units)
assert outputs.get_shape().as_list() == [BATCH, STEPS, UNITS]

data = np.random.RandomState(2).randn(BATCH, STEPS, FEATURES).astype(np.float32)
sizes = np.array([STEPS, 4, 1], np.int32)
with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    out, (_, last) = sess.run([outputs, state], {inputs: data, lengths: sizes})
for row, size in enumerate(sizes):
    assert not out[row, size:].any(), "outputs past the length must be zero"
    np.testing.assert_allclose(last[row], out[row, size - 1], rtol=1e-6)
print("python_ops: outputs stop at each length and the final state is the last valid output")
