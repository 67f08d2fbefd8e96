"""Recipe 2, TF1 form: setting the state to given values that stick, and starting it from features.

The pitfall: a state kept in `tf.Variable`s is in GLOBAL_VARIABLES, so a later
`sess.run(tf.global_variables_initializer())` puts it back to zeros after you set it by hand.
tf.keras 2.x stateful layers behave the same: `layer.reset_states(values)` assigns the layer's
(global) state variables (`keras_style_reset_states` below does what it does), and the next
global initializer undoes it. A new `tf.assign(var, values)` per call also grows the graph.

The fix: make the state variables local (`collections=[tf.GraphKeys.LOCAL_VARIABLES]`),
initialize them once with `tf.local_variables_initializer()`, and set them through assign ops
built once, fed by placeholders. To start a stream from features instead of zeros, `tf.cond`
on the step flag between the stored state and a projection of the features.

`tfstate upgrade` turns this script into one that runs on current TensorFlow;
../set_state.py is the same recipe written with tfstate (RNNState, reset_value).
"""
import numpy as np
import tensorflow as tf

BATCH, STEPS, FEATURES, UNITS, SPEAKER = 2, 4, 3, 6, 5


def keras_style_reset_states(sess, variables, values):
    """What tf.keras 2.x's `layer.reset_states(values)` does: assign each (global) state variable."""
    for variable, value in zip(variables, values):
        if not hasattr(variable, "_set_placeholder"):  # built once per variable, as K.batch_set_value does
            variable._set_placeholder = tf.placeholder(variable.dtype.base_dtype, variable.shape)
            variable._set_op = tf.assign(variable, variable._set_placeholder)
        sess.run(variable._set_op, {variable._set_placeholder: value})


def local_state_variable(name, shape):
    return tf.get_variable(name, shape, initializer=tf.zeros_initializer(), trainable=False,
                           collections=[tf.GraphKeys.LOCAL_VARIABLES])


rng = np.random.RandomState(0)
inputs = rng.randn(BATCH, 2 * STEPS, FEATURES).astype(np.float32)
values_c = rng.randn(BATCH, UNITS).astype(np.float32)
values_h = np.tanh(rng.randn(BATCH, UNITS)).astype(np.float32)
speakers = rng.randn(BATCH, SPEAKER).astype(np.float32)

x = tf.placeholder(tf.float32, [BATCH, None, FEATURES])
step = tf.placeholder_with_default(tf.constant(-1, tf.int64), [])

# The pitfall: the state in ordinary (global) variables.
naive_cell = tf.nn.rnn_cell.LSTMCell(UNITS, name="naive_lstm")
naive_state = tf.nn.rnn_cell.LSTMStateTuple(tf.Variable(tf.zeros([BATCH, UNITS]), trainable=False),
                                            tf.Variable(tf.zeros([BATCH, UNITS]), trainable=False))
naive_outputs, _ = tf.nn.dynamic_rnn(naive_cell, x, initial_state=naive_state, scope="naive")

# The fix: local state variables, set through ops built once.
cell = tf.nn.rnn_cell.LSTMCell(UNITS)
state = tf.nn.rnn_cell.LSTMStateTuple(local_state_variable("state_c", [BATCH, UNITS]),
                                      local_state_variable("state_h", [BATCH, UNITS]))
outputs, final_state = tf.nn.dynamic_rnn(cell, x, initial_state=state)
set_c, set_h = tf.placeholder(tf.float32, [BATCH, UNITS]), tf.placeholder(tf.float32, [BATCH, UNITS])
set_state_op = tf.group(tf.assign(state.c, set_c), tf.assign(state.h, set_h))
given = tf.nn.rnn_cell.LSTMStateTuple(tf.placeholder(tf.float32, [BATCH, UNITS]),
                                      tf.placeholder(tf.float32, [BATCH, UNITS]))
from_given, _ = tf.nn.dynamic_rnn(cell, x, initial_state=given, scope="oracle")

# The state initialised from a feature vector: step=0 starts from a projection of the speaker vector.
speaker = tf.placeholder(tf.float32, [BATCH, SPEAKER])
init_state = tf.nn.rnn_cell.LSTMStateTuple(tf.layers.dense(speaker, UNITS, name="init_c"),
                                           tf.tanh(tf.layers.dense(speaker, UNITS, name="init_h")))
speaker_cell = tf.nn.rnn_cell.LSTMCell(UNITS, name="speaker_lstm")
speaker_vars = tf.nn.rnn_cell.LSTMStateTuple(local_state_variable("speaker_c", [BATCH, UNITS]),
                                             local_state_variable("speaker_h", [BATCH, UNITS]))
speaker_initial = tf.cond(tf.equal(step, 0), lambda: init_state, lambda: speaker_vars)
speaker_outputs, speaker_final = tf.nn.dynamic_rnn(speaker_cell, x, initial_state=speaker_initial, scope="speaker")
speaker_keep = tf.tuple([tf.assign(speaker_vars.c, speaker_final.c), tf.assign(speaker_vars.h, speaker_final.h)])
from_features, _ = tf.nn.dynamic_rnn(speaker_cell, x, initial_state=init_state, scope="oracle2")

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    sess.run(tf.local_variables_initializer())

    # 1. the pitfall: set by hand, "works", then wiped by the initializer
    keras_style_reset_states(sess, naive_state, [values_c, values_h])
    np.testing.assert_array_equal(sess.run(naive_state.c), values_c)
    from_set = sess.run(naive_outputs, {x: inputs})
    sess.run(tf.global_variables_initializer())
    assert not sess.run(naive_state.c).any(), "the initializer should have wiped the naive state"
    assert not np.allclose(sess.run(naive_outputs, {x: inputs}), from_set, rtol=1e-5, atol=1e-5)
    ops = len(tf.get_default_graph().get_operations())
    for _ in range(3):  # a new assign op per call: the graph grows on every reset
        sess.run(tf.assign(naive_state.c, values_c))
    grown = len(tf.get_default_graph().get_operations()) - ops
    assert grown >= 3, grown

    # 2. the fix: local variables survive the global initializer, and the next run starts from them
    ops = len(tf.get_default_graph().get_operations())
    for _ in range(5):
        sess.run(set_state_op, {set_c: values_c, set_h: values_h})
    assert len(tf.get_default_graph().get_operations()) == ops
    sess.run(tf.global_variables_initializer())
    np.testing.assert_array_equal(sess.run(state.c), values_c)
    np.testing.assert_array_equal(sess.run(state.h), values_h)
    expected = sess.run(from_given, {x: inputs, given.c: values_c, given.h: values_h})
    np.testing.assert_allclose(sess.run(outputs, {x: inputs}), expected, rtol=1e-5, atol=1e-5)

    # 3. the state from features: step=0 starts from the projection, the keep op carries on from there
    oracle = sess.run(from_features, {x: inputs, speaker: speakers})
    first, _ = sess.run([speaker_outputs, speaker_keep], {x: inputs[:, :STEPS], speaker: speakers, step: 0})
    second, _ = sess.run([speaker_outputs, speaker_keep], {x: inputs[:, STEPS:], speaker: speakers})
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), oracle, rtol=1e-5, atol=1e-5)

print("set_state (TF1 form): a hand-set global state was wiped by global_variables_initializer() and a per-call "
      "assign grew the graph by %d ops; local state variables kept the given values and the run started from "
      "them; the state from speaker features == dynamic_rnn from that initial state" % grown)
