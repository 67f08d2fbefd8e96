"""Recipe 1: a stateful multi-layer LSTM over a long stream, with keep and reset fetches and a step flag.

The TF1 recipe (tf1/stateful_lstm.py) keeps the state in variables, starts each run from them
through `tf.cond` on a step flag, and stores the final state with a `tf.tuple` of assigns.
tfstate builds all of that once:

    rnn = tfstate.stateful_dynamic_rnn(cell, x)
    sess.run([rnn.outputs, rnn.keep], {x: chunk})      # carry the state to the next run
    sess.run(rnn.outputs, {x: chunk})                  # peek: the state is left as it was
    sess.run(rnn.reset)                                # back to zeros
    sess.run(..., {x: chunk, rnn.step: 0})             # start this run from zeros

Checks: the stream read chunk by chunk with keep equals one long run from zeros; after a reset
(op or step flag) a run equals a fresh start; a peek changes nothing; StatefulSession does the
same; running keep and reset many times adds no op to the graph.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import tfstate

tf.compat.v1.disable_eager_execution()

BATCH, CHUNK, CHUNKS, FEATURES, UNITS, LAYERS = 3, 5, 4, 2, 8, 2
TOL = dict(rtol=1e-5, atol=1e-5)


def main():
    stream = np.random.RandomState(0).randn(BATCH, CHUNK * CHUNKS, FEATURES).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, [None, None, FEATURES], name="x")
        cell = tfstate.MultiRNNCell([tfstate.LSTMCell(UNITS) for _ in range(LAYERS)])
        # A fixed batch, as in the TF1 recipe (the default, batch_size=None, lets it change at step 0).
        rnn = tfstate.stateful_dynamic_rnn(cell, x, batch_size=BATCH)
        predictions = tfstate.layers.dense(rnn.outputs, 1, name="head")
        # The oracle: the same cell (same weights) over the whole stream, from zeros, no state kept.
        fresh_outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, x, dtype=tf.float32, scope="oracle")
        fresh_predictions = tfstate.layers.dense(fresh_outputs, 1, name="head", reuse=True)

        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(rnn.state.initializer)
            graph.finalize()  # from here on, no run may add an op
            whole = sess.run(fresh_predictions, {x: stream})

            # 1. chunk by chunk, keeping the state == one long run
            chunks = [
                sess.run([predictions, rnn.keep], {x: stream[:, i * CHUNK : (i + 1) * CHUNK]})[0] for i in range(CHUNKS)
            ]
            np.testing.assert_allclose(np.concatenate(chunks, axis=1), whole, **TOL)

            # 2. a peek (no keep fetched) leaves the state alone
            stored = rnn.state.read(sess)
            peek_1 = sess.run(predictions, {x: stream[:, :CHUNK]})
            peek_2 = sess.run(predictions, {x: stream[:, :CHUNK]})
            np.testing.assert_array_equal(peek_1, peek_2)
            for before, after in zip(tf.nest.flatten(stored), tf.nest.flatten(rnn.state.read(sess))):
                np.testing.assert_array_equal(before, after)
            assert not np.allclose(peek_1, whole[:, :CHUNK], **TOL), "a carried run must not look fresh"

            # 3. the step flag: step=0 starts this run from zeros (and, with keep, stores its end)
            restarted = sess.run(predictions, {x: stream[:, :CHUNK], rnn.step: 0})
            np.testing.assert_allclose(restarted, whole[:, :CHUNK], **TOL)

            # 4. the reset op: back to zeros, then a run is a fresh start
            sess.run(rnn.reset)
            assert all(not value.any() for value in tf.nest.flatten(rnn.state.read(sess)))
            np.testing.assert_allclose(sess.run(predictions, {x: stream[:, :CHUNK]}), whole[:, :CHUNK], **TOL)

            # 5. the same with StatefulSession: run() keeps, step=0 restarts, reset_rows restarts chosen rows
            stateful = tfstate.StatefulSession(sess, rnn)
            chunks = [
                stateful.run(predictions, {x: stream[:, i * CHUNK : (i + 1) * CHUNK]}, step=0 if i == 0 else None)
                for i in range(CHUNKS)
            ]
            np.testing.assert_allclose(np.concatenate(chunks, axis=1), whole, **TOL)
            rows = np.array([False, True, False])
            mixed = stateful.run(predictions, {x: stream[:, :CHUNK]}, keep=False, reset_rows=rows)
            np.testing.assert_allclose(mixed[1], whole[1, :CHUNK], **TOL)
            assert not np.allclose(mixed[0], whole[0, :CHUNK], **TOL)

            # 6. many keeps and resets later, the graph has not grown (it is finalized: adding an op raises)
            ops = len(graph.get_operations())
            for _ in range(50):
                sess.run([predictions, rnn.keep], {x: stream[:, :CHUNK]})
                stateful.reset()
            assert len(graph.get_operations()) == ops

    print(
        f"stateful_lstm: {LAYERS}-layer LSTM over {CHUNKS} chunks of {CHUNK} steps: "
        "chunked with keep == one long run; "
        "peek leaves the state alone; step=0, reset and reset_rows == fresh start; graph did not grow"
    )


if __name__ == "__main__":
    main()
