"""Recipe 4, TF1 form: the cell and hidden state of every timestep.

`tf.nn.dynamic_rnn` returns `outputs` (the top layer's h at every step) and the state of the last
step only. The classic recipe wraps the cell so that its output at each step is
`(output, new_state)`; dynamic_rnn then stacks every step's state along the time axis.

Checks: the state at step t equals the final state of a run over the first t+1 steps, for both
layers and both c and h; the last layer's h equals `outputs`. `tfstate upgrade` turns this into a
script that runs on current TensorFlow; ../every_timestep_state.py is the same recipe with
tfstate.dynamic_rnn_with_states.
"""
import numpy as np
import tensorflow as tf

BATCH, STEPS, FEATURES, UNITS, LAYERS = 2, 6, 3, 5, 2


class StateOutputWrapper(tf.nn.rnn_cell.RNNCell):
    """A cell whose output at each step is (output, new_state)."""

    def __init__(self, cell):
        super(StateOutputWrapper, self).__init__()
        self._cell = cell

    @property
    def state_size(self):
        return self._cell.state_size

    @property
    def output_size(self):
        return (self._cell.output_size, self._cell.state_size)

    def zero_state(self, batch_size, dtype):
        return self._cell.zero_state(batch_size, dtype)

    def call(self, inputs, state):
        output, new_state = self._cell(inputs, state)
        return (output, new_state), new_state


inputs = np.random.RandomState(0).randn(BATCH, STEPS, FEATURES).astype(np.float32)
x = tf.placeholder(tf.float32, [None, None, FEATURES])
cell = tf.nn.rnn_cell.MultiRNNCell([tf.nn.rnn_cell.LSTMCell(UNITS) for _ in range(LAYERS)])
(outputs, states), final_state = tf.nn.dynamic_rnn(StateOutputWrapper(cell), x, dtype=tf.float32)
_, prefix_final = tf.nn.dynamic_rnn(cell, x, dtype=tf.float32, scope="prefix")  # same weights

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    got_outputs, got_states = sess.run([outputs, states], {x: inputs})
    prefixes = [sess.run(prefix_final, {x: inputs[:, :t + 1]}) for t in range(STEPS)]

for layer in range(LAYERS):
    assert got_states[layer].c.shape == (BATCH, STEPS, UNITS), got_states[layer].c.shape
    for t in range(STEPS):
        np.testing.assert_allclose(got_states[layer].c[:, t], prefixes[t][layer].c, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got_states[layer].h[:, t], prefixes[t][layer].h, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(got_states[-1].h, got_outputs, rtol=1e-5, atol=1e-5)
print("every_timestep_state (TF1 form): c and h of %d layers at all %d steps == final states of the prefix runs; "
      "last layer's h == outputs" % (LAYERS, STEPS))
