"""Recipe 4: the cell and hidden state of every timestep.

`dynamic_rnn` returns `outputs` (h of the last layer at every step) but the state only for the last
step, so c, and every lower layer's h, are lost in between. The TF1 recipe wraps the cell so that
its output carries the new state (tf1/every_timestep_state.py); tfstate ships that:

    outputs, states, final_state = tfstate.dynamic_rnn_with_states(cell, x, dtype=tf.float32)
    states[layer].c, states[layer].h       # [batch, time, units]: the state after every step

Checks: the state at step t equals the final state of a run over the first t+1 steps (prefix
runs), for both layers and both c and h; the last layer's h equals `outputs`; the last step
equals `final_state`; with `sequence_length`, padded steps repeat the last valid state;
`StateTraceWrapper` gives the same under a plain `dynamic_rnn`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import tfstate

tf.compat.v1.disable_eager_execution()

BATCH, STEPS, FEATURES, UNITS, LAYERS = 2, 6, 3, 5, 2
TOL = dict(rtol=1e-5, atol=1e-5)


def main():
    inputs = np.random.RandomState(0).randn(BATCH, STEPS, FEATURES).astype(np.float32)
    lengths = np.array([STEPS, 3], np.int32)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, [None, None, FEATURES], name="x")
        cell = tfstate.MultiRNNCell([tfstate.LSTMCell(UNITS) for _ in range(LAYERS)])
        outputs, states, final_state = tfstate.dynamic_rnn_with_states(cell, x, dtype=tf.float32)
        # The oracle: a plain dynamic_rnn (same weights), run on prefixes x[:, :t+1].
        _, prefix_final = tf.compat.v1.nn.dynamic_rnn(cell, x, dtype=tf.float32, scope="prefix")
        # Padded rows, and the wrapper under a plain dynamic_rnn.
        _, padded_states, padded_final = tfstate.dynamic_rnn_with_states(
            cell, x, sequence_length=lengths, dtype=tf.float32, scope="padded"
        )
        (_, wrapped_states), _ = tf.compat.v1.nn.dynamic_rnn(
            tfstate.StateTraceWrapper(cell), x, dtype=tf.float32, scope="wrapped"
        )

        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            got_outputs, got_states, got_final, got_padded, got_padded_final, got_wrapped = sess.run(
                [outputs, states, final_state, padded_states, padded_final, wrapped_states], {x: inputs}
            )
            prefixes = [sess.run(prefix_final, {x: inputs[:, : t + 1]}) for t in range(STEPS)]

    for layer in range(LAYERS):
        assert got_states[layer].c.shape == (BATCH, STEPS, UNITS), got_states[layer].c.shape
        for t in range(STEPS):
            np.testing.assert_allclose(got_states[layer].c[:, t], prefixes[t][layer].c, **TOL)
            np.testing.assert_allclose(got_states[layer].h[:, t], prefixes[t][layer].h, **TOL)
        np.testing.assert_allclose(got_states[layer].c[:, -1], got_final[layer].c, **TOL)
    np.testing.assert_allclose(got_states[-1].h, got_outputs, **TOL)
    for traced, wrapped in zip(tf.nest.flatten(got_states), tf.nest.flatten(got_wrapped)):
        np.testing.assert_allclose(traced, wrapped, **TOL)
    short = lengths[1]
    for layer in range(LAYERS):
        for part in ("c", "h"):
            padded = getattr(got_padded[layer], part)[1]
            np.testing.assert_allclose(padded[:short], getattr(got_states[layer], part)[1, :short], **TOL)
            np.testing.assert_allclose(padded[short:], np.broadcast_to(padded[short - 1], padded[short:].shape))
            np.testing.assert_allclose(getattr(got_padded_final[layer], part)[1], padded[short - 1], **TOL)
    print(
        f"every_timestep_state: c and h of {LAYERS} layers at all {STEPS} steps == final states of the prefix runs; "
        "last layer's h == outputs; padded steps repeat the last valid state; StateTraceWrapper agrees"
    )


if __name__ == "__main__":
    main()
