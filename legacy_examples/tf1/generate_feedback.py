"""Recipe 3, TF1 form: feeding the output back as input, a per-step loop vs a tf.while_loop.

A small LSTM learns to predict the next value of sine waves. To continue a wave, the classic
recipe runs one cell step per `session.run`, feeding the state and the last prediction back in
from Python. The faster TF1 way is a `tf.while_loop` that runs the cell and the output layer
in-graph for all steps (one `session.run`). Both start from the state after reading a context.

Checks: training lowers the loss; both ways give the same values (within 1e-5); the continuation
beats predicting zeros. Prints both timings. `tfstate upgrade` turns this into a script that runs
on current TensorFlow; ../generate_feedback.py is the same recipe written with tfstate.generate.
"""
import time

import numpy as np
import tensorflow as tf

UNITS, WINDOW, BATCH, TRAIN_STEPS = 16, 40, 16, 150
CONTEXT, HORIZON, PERIOD = 40, 60, 20.0


def waves(rng, rows, length):
    t = np.arange(length)[None, :] + rng.uniform(0, PERIOD, (rows, 1))
    return np.sin(2 * np.pi * t / PERIOD).astype(np.float32)[:, :, None]


def head(output):
    return tf.layers.dense(output, 1, name="head", reuse=tf.AUTO_REUSE)


rng = np.random.RandomState(0)
tf.set_random_seed(0)
x = tf.placeholder(tf.float32, [None, None, 1])
target = tf.placeholder(tf.float32, [None, None, 1])
cell = tf.contrib.rnn.LSTMCell(UNITS)
outputs, final_state = tf.nn.dynamic_rnn(cell, x, dtype=tf.float32)
loss = tf.reduce_mean(tf.square(head(outputs) - target))
train_op = tf.train.AdamOptimizer(0.01).minimize(loss)

# One cell step: the per-step loop feeds the state in and fetches it out on every run.
x1 = tf.placeholder(tf.float32, [None, 1])
state_in = tf.contrib.rnn.LSTMStateTuple(tf.placeholder(tf.float32, [None, UNITS]),
                                         tf.placeholder(tf.float32, [None, UNITS]))
step_output, step_state = cell(x1, state_in)
step_value = head(step_output)


# All steps in-graph with a tf.while_loop.
def body(k, value, state, values):
    output, state = cell(value, state)
    value = head(output)
    return k + 1, value, state, values.write(k, value)


_, _, _, values = tf.while_loop(lambda k, *_: k < HORIZON, body,
                                (tf.constant(0), x1, state_in, tf.TensorArray(tf.float32, size=HORIZON)))
generated_values = tf.transpose(values.stack(), [1, 0, 2])

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    losses = []
    for _ in range(TRAIN_STEPS):
        batch = waves(rng, BATCH, WINDOW + 1)
        _, value = sess.run([train_op, loss], {x: batch[:, :-1], target: batch[:, 1:]})
        losses.append(value)
    assert np.mean(losses[-10:]) < 0.2 * np.mean(losses[:10]), (losses[:10], losses[-10:])

    test = waves(rng, 4, CONTEXT + 1 + HORIZON)
    carried = sess.run(final_state, {x: test[:, :CONTEXT]})  # the state after reading the context
    first = test[:, CONTEXT]
    truth = test[:, CONTEXT + 1:, 0]

    def per_step_loop():
        value, state = first, carried
        collected = []
        for _ in range(HORIZON):
            value, state = sess.run([step_value, step_state], {x1: value, state_in: state})
            collected.append(value)
        return np.concatenate(collected, axis=1)

    def in_graph():
        return sess.run(generated_values, {x1: first, state_in: carried})[:, :, 0]

    looped, in_graph_values = per_step_loop(), in_graph()
    timings = {}
    for name, function in (("loop", per_step_loop), ("while_loop", in_graph)):
        started = time.perf_counter()
        for _ in range(3):
            function()
        timings[name] = (time.perf_counter() - started) / 3

np.testing.assert_allclose(in_graph_values, looped, rtol=1e-5, atol=1e-5)
mse = float(np.mean((in_graph_values - truth) ** 2))
assert mse < np.mean(truth ** 2), mse
print("generate_feedback (TF1 form): loss %.3f -> %.4f; %d steps, loop == while_loop within 1e-5 (MSE %.4f); "
      "per-step loop %.1f ms, while_loop %.1f ms" % (np.mean(losses[:10]), np.mean(losses[-10:]), HORIZON, mse,
                                                     timings["loop"] * 1e3, timings["while_loop"] * 1e3))
