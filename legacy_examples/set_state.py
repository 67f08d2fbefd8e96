"""Recipe 2: setting the state to given values that stick, and starting it from a feature vector.

The pitfall. TF1 recipes keep the state in ordinary variables, which land in GLOBAL_VARIABLES;
tf.keras 2.x's stateful layers do too, and `layer.reset_states(values)` sets them with an assign
(`K.batch_set_value`). Setting the state "works", until `global_variables_initializer()` runs
again (a new optimizer, a restarted training loop, a helper that initializes "everything")
and silently puts the state back to zeros. Building a fresh `var.assign(values)` per call also
grows the graph on every reset.

The fix. tfstate keeps the state in LOCAL_VARIABLES (and `tfstate.STATE_VARIABLES`), so
`global_variables_initializer()` never touches it; `rnn.state.assign(sess, values)` (or
`StatefulSession.set_state`) sets it through ops built once. A `reset_value` computed from
per-stream features (here a projection of a speaker vector) replaces zeros at every reset.

Checks: the pitfall happens (state wiped by the initializer, graph grows per naive assign); with
tfstate the values survive the initializer, the next run starts from them (== dynamic_rnn with that
initial_state), save/load round-trips, the graph does not grow; a reset starts from the projected
features (== dynamic_rnn with that initial_state) and carries on from there.
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import tfstate

tf.compat.v1.disable_eager_execution()

BATCH, STEPS, FEATURES, UNITS, SPEAKER = 2, 4, 3, 6, 5
TOL = dict(rtol=1e-5, atol=1e-5)


def keras_style_reset_states(sess, variables, values):
    """What tf.keras 2.x's `layer.reset_states(values)` does: assign each (global) state variable."""
    for variable, value in zip(variables, values):
        if not hasattr(variable, "_set_placeholder"):  # built once per variable, as K.batch_set_value does
            variable._set_placeholder = tf.compat.v1.placeholder(variable.dtype.base_dtype, variable.shape)
            variable._set_op = variable.assign(variable._set_placeholder, read_value=False)
        sess.run(variable._set_op, {variable._set_placeholder: value})


def main():
    rng = np.random.RandomState(0)
    inputs = rng.randn(BATCH, 2 * STEPS, FEATURES).astype(np.float32)
    values = tfstate.LSTMStateTuple(
        rng.randn(BATCH, UNITS).astype(np.float32), np.tanh(rng.randn(BATCH, UNITS)).astype(np.float32)
    )
    speakers = rng.randn(BATCH, SPEAKER).astype(np.float32)

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, [None, None, FEATURES], name="x")

        # --- the pitfall: state in ordinary (global) variables
        naive_cell = tfstate.LSTMCell(UNITS, name="naive_lstm")
        naive_state = tfstate.LSTMStateTuple(
            tf.compat.v1.Variable(tf.zeros([BATCH, UNITS]), trainable=False, name="naive_c"),
            tf.compat.v1.Variable(tf.zeros([BATCH, UNITS]), trainable=False, name="naive_h"),
        )
        assert all(v in tf.compat.v1.global_variables() for v in naive_state)

        # --- the fix: tfstate's state, and the oracle that starts from the given values explicitly
        cell = tfstate.LSTMCell(UNITS)
        rnn = tfstate.stateful_dynamic_rnn(cell, x, batch_size=BATCH)
        given = tfstate.LSTMStateTuple(
            tf.compat.v1.placeholder(tf.float32, [None, UNITS]), tf.compat.v1.placeholder(tf.float32, [None, UNITS])
        )
        from_given, _ = tf.compat.v1.nn.dynamic_rnn(cell, x, initial_state=given, scope="oracle")

        # --- the state initialised from a feature vector (reset_value)
        speaker = tf.compat.v1.placeholder(tf.float32, [None, SPEAKER], name="speaker")
        init_state = tfstate.LSTMStateTuple(
            tfstate.layers.dense(speaker, UNITS, name="init_c"),
            tf.tanh(tfstate.layers.dense(speaker, UNITS, name="init_h")),
        )
        speaker_cell = tfstate.LSTMCell(UNITS, name="speaker_lstm")
        speaker_rnn = tfstate.stateful_dynamic_rnn(speaker_cell, x, reset_value=init_state, name="speaker_state")
        from_features, _ = tf.compat.v1.nn.dynamic_rnn(speaker_cell, x, initial_state=init_state, scope="oracle2")
        naive_outputs, _ = tf.compat.v1.nn.dynamic_rnn(naive_cell, x, initial_state=naive_state, scope="naive")

        local = tf.compat.v1.local_variables()
        assert all(
            v in local and v not in tf.compat.v1.global_variables() for v in tf.nest.flatten(rnn.state.variables)
        )

        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())

            # 1. the pitfall: set by hand, "works", then wiped by the initializer
            keras_style_reset_states(sess, naive_state, values)
            np.testing.assert_array_equal(sess.run(naive_state.c), values.c)
            from_set = sess.run(naive_outputs, {x: inputs})
            sess.run(tf.compat.v1.global_variables_initializer())
            assert not sess.run(naive_state.c).any(), "the initializer should have wiped the naive state"
            assert not np.allclose(sess.run(naive_outputs, {x: inputs}), from_set, **TOL)
            ops = len(graph.get_operations())
            for _ in range(3):  # a new assign op per call: the graph grows on every reset
                sess.run(naive_state.c.assign(values.c))
            grown = len(graph.get_operations()) - ops
            assert grown >= 3, grown

            # 2. the fix: the values stick through the initializer, and the next run starts from them
            stateful = tfstate.StatefulSession(sess, rnn, speaker_rnn)
            rnn.state.assign(sess, values)
            sess.run(tf.compat.v1.global_variables_initializer())
            kept = rnn.state.read(sess)
            np.testing.assert_array_equal(kept.c, values.c)
            np.testing.assert_array_equal(kept.h, values.h)
            expected = sess.run(from_given, {x: inputs, given.c: values.c, given.h: values.h})
            np.testing.assert_allclose(sess.run(rnn.outputs, {x: inputs}), expected, **TOL)

            # StatefulSession: get/set and save/load round-trip, and no op is added by any of it
            ops = len(graph.get_operations())
            stateful.run(rnn.outputs, {x: inputs[:, :STEPS], speaker: speakers}, step=0)  # both states move on
            snapshot = stateful.get_state()
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "state.npz")
                stateful.save_state(path)
                for _ in range(20):
                    rnn.state.assign(sess, values)
                stateful.load_state(path)
            for saved, loaded in zip(tf.nest.flatten(snapshot), tf.nest.flatten(stateful.get_state())):
                np.testing.assert_array_equal(saved, loaded)
            assert len(graph.get_operations()) == ops, "setting the state must not grow the graph"

            # 3. reset_value from features: step=0 starts from the projection; keep carries on from there
            feed = {x: inputs, speaker: speakers}
            oracle = sess.run(from_features, feed)
            first = stateful.run(speaker_rnn.outputs, {x: inputs[:, :STEPS], speaker: speakers}, step=0)
            second = stateful.run(speaker_rnn.outputs, {x: inputs[:, STEPS:], speaker: speakers})
            np.testing.assert_allclose(np.concatenate([first, second], axis=1), oracle, **TOL)
            sess.run(speaker_rnn.reset, {speaker: speakers})
            projected = sess.run(init_state, {speaker: speakers})
            for got, want in zip(speaker_rnn.state.read(sess), projected):
                np.testing.assert_allclose(got, want, **TOL)

    print(
        f"set_state: a hand-set global state was wiped by global_variables_initializer() and "
        f"a per-call assign grew the graph by {grown} ops; tfstate's state survived it, the run started from the "
        "given values, save/load round-tripped with no graph growth; reset_value from speaker features == "
        "dynamic_rnn from that initial state"
    )


if __name__ == "__main__":
    main()
