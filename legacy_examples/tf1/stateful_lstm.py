"""Recipe 1, TF1 form: a stateful multi-layer LSTM over a long stream (TensorFlow 1.15, tf.contrib).

The classic recipe: the state lives in non-trainable variables; each run starts from them,
or from zeros when the step flag is fed 0 (`tf.cond`); a `tf.tuple` of assigns (the keep op)
stores the final state for the next run, and a reset op zeroes it. Fetch the keep op on every
run that should carry the state; a run without it only peeks.

Run `tfstate upgrade legacy_examples/tf1/stateful_lstm.py -o stateful_lstm_v2.py` to get a
script that runs on current TensorFlow; ../stateful_lstm.py is the same recipe written with tfstate.
"""
import numpy as np
import tensorflow as tf

BATCH, CHUNK, CHUNKS, FEATURES, UNITS, LAYERS = 3, 5, 4, 2, 8, 2


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
        update_ops.extend([tf.assign(state_variable.c, new_state.c),
                           tf.assign(state_variable.h, new_state.h)])
    return tf.tuple(update_ops)


def get_state_reset_op(state_variables, cell, batch_size):
    zero_states = cell.zero_state(batch_size, tf.float32)
    return get_state_update_op(state_variables, zero_states)


x = tf.placeholder(tf.float32, [BATCH, None, FEATURES])
step = tf.placeholder_with_default(tf.constant(-1, tf.int64), [])
cell = tf.nn.rnn_cell.MultiRNNCell([tf.contrib.rnn.LSTMCell(UNITS) for _ in range(LAYERS)])
states = get_state_variables(BATCH, cell)
initial_state = tf.cond(tf.equal(step, 0), lambda: cell.zero_state(BATCH, tf.float32), lambda: states)
outputs, final_state = tf.nn.dynamic_rnn(cell, x, initial_state=initial_state)
predictions = tf.layers.dense(outputs, 1, name="head")
keep_op = get_state_update_op(states, final_state)
reset_op = get_state_reset_op(states, cell, BATCH)

# The oracle: the same cell (same weights) over the whole stream from zeros.
fresh_outputs, _ = tf.nn.dynamic_rnn(cell, x, dtype=tf.float32, scope="oracle")
fresh_predictions = tf.layers.dense(fresh_outputs, 1, name="head", reuse=True)

stream = np.random.RandomState(0).randn(BATCH, CHUNK * CHUNKS, FEATURES).astype(np.float32)
with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    whole = sess.run(fresh_predictions, {x: stream})

    chunks = []
    for i in range(CHUNKS):
        chunk_predictions, _ = sess.run([predictions, keep_op], {x: stream[:, i * CHUNK:(i + 1) * CHUNK]})
        chunks.append(chunk_predictions)
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), whole, rtol=1e-5, atol=1e-5)

    # A peek (keep_op not fetched) leaves the state alone.
    stored = sess.run(states)
    peek_1 = sess.run(predictions, {x: stream[:, :CHUNK]})
    peek_2 = sess.run(predictions, {x: stream[:, :CHUNK]})
    np.testing.assert_array_equal(peek_1, peek_2)
    np.testing.assert_array_equal(np.array(stored), np.array(sess.run(states)))
    assert not np.allclose(peek_1, whole[:, :CHUNK], rtol=1e-5, atol=1e-5), "a carried run must not look fresh"

    # The step flag: step=0 starts the run from zeros.
    restarted = sess.run(predictions, {x: stream[:, :CHUNK], step: 0})
    np.testing.assert_allclose(restarted, whole[:, :CHUNK], rtol=1e-5, atol=1e-5)

    # The reset op: zeros, then a run is a fresh start.
    sess.run(reset_op)
    assert not np.array(sess.run(states)).any()
    np.testing.assert_allclose(sess.run(predictions, {x: stream[:, :CHUNK]}), whole[:, :CHUNK], rtol=1e-5, atol=1e-5)

print("stateful_lstm (TF1 form): chunked with keep == one long run; peek leaves the state alone; "
      "step=0 and reset == fresh start")
