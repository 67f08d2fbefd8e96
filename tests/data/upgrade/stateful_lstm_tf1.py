"""A TF1 stateful LSTM, written as the classic recipe wrote it (TensorFlow 1.x, tf.contrib).

The recurrent state lives in non-trainable variables; each `session.run` starts from them
and a `tf.tuple` of assigns stores the final state for the next chunk. `reset` (fed True)
starts from zeros instead. The script checks its own claim: a stream run chunk by chunk,
keeping the state, gives the same outputs as the whole stream run at once.
"""
import numpy as np
import tensorflow as tf

BATCH, CHUNK, CHUNKS, FEATURES, UNITS, LAYERS = 2, 4, 3, 3, 5, 2


def get_state_variables(batch_size, cell):
    state_variables = []
    for state_c, state_h in cell.zero_state(batch_size, tf.float32):
        state_variables.append(tf.contrib.rnn.LSTMStateTuple(
            tf.Variable(state_c, trainable=False),
            tf.Variable(state_h, trainable=False)))
    return tuple(state_variables)


def get_state_update_op(state_variables, new_states):
    update_ops = []
    for state_variable, new_state in zip(state_variables, new_states):
        update_ops.extend([state_variable[0].assign(new_state[0]),
                           state_variable[1].assign(new_state[1])])
    return tf.tuple(update_ops)


inputs = tf.placeholder(tf.float32, [BATCH, None, FEATURES])
reset = tf.placeholder_with_default(False, [])
cell = tf.nn.rnn_cell.MultiRNNCell([tf.contrib.rnn.LSTMCell(UNITS) for _ in range(LAYERS)])
states = get_state_variables(BATCH, cell)
zero_state = cell.zero_state(BATCH, tf.float32)
initial_state = tf.cond(reset, lambda: zero_state, lambda: states)
outputs, final_state = tf.nn.dynamic_rnn(cell, inputs, initial_state=initial_state)
predictions = tf.contrib.layers.fully_connected(outputs, 1, activation_fn=None)
update_op = get_state_update_op(states, final_state)

stream = np.random.RandomState(0).randn(BATCH, CHUNK * CHUNKS, FEATURES).astype(np.float32)
with tf.Session() as sess:
    sess.run(tf.initialize_all_variables())
    chunks = []
    for i in range(CHUNKS):
        chunk = stream[:, i * CHUNK:(i + 1) * CHUNK]
        chunk_predictions, _ = sess.run([predictions, update_op], {inputs: chunk})
        chunks.append(chunk_predictions)
    # The state is now that of the whole stream; reset=True must ignore it.
    whole = sess.run(predictions, {inputs: stream, reset: True})
    carried = sess.run(predictions, {inputs: stream})

np.testing.assert_allclose(np.concatenate(chunks, axis=1), whole, rtol=1e-5, atol=1e-5)
assert not np.allclose(carried, whole), "without reset the run must start from the kept state"
print("stateful_lstm: a chunked run with kept state equals one long run")
