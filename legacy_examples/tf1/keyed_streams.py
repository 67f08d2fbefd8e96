"""Recipe 6, TF1 form: many streams, one model, each stream's state kept in Python by the client.

The classic recipe: the graph is stateless; a dict maps each stream to its (c, h) as NumPy
arrays. Every training run gathers its rows' states from the dict (zeros for a new stream) into
the initial-state placeholders and scatters the fetched final state back. For serving, the
SavedModel's signature takes the state in and gives the new state out, and the client keeps the
dict between requests (TF Serving itself cannot keep it).

Checks: training on batches drawn from many streams in turn lowers the loss; a fresh process
serving the SavedModel one step at a time for interleaved streams, the client carrying each
stream's state, gets each stream's outputs as if it ran alone. `tfstate upgrade` turns this into
a script that runs on current TensorFlow; ../keyed_streams.py keeps the state inside the model.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

UNITS, STREAMS, LENGTH, CHUNK, ROWS, EPOCHS = 16, 12, 120, 20, 4, 12
SERVED = ["ana", "ben", "cleo"]


def waves(rng, streams, length):
    period = rng.uniform(8, 24, (streams, 1))
    t = np.arange(length + 1)[None, :] + rng.uniform(0, 24, (streams, 1))
    return np.sin(2 * np.pi * t / period).astype(np.float32)[:, :, None]


def model():
    x = tf.placeholder(tf.float32, [None, None, 1], name="inputs")
    state_in = tf.nn.rnn_cell.LSTMStateTuple(tf.placeholder(tf.float32, [None, UNITS], name="c_in"),
                                             tf.placeholder(tf.float32, [None, UNITS], name="h_in"))
    cell = tf.nn.rnn_cell.LSTMCell(UNITS)
    outputs, state_out = tf.nn.dynamic_rnn(cell, x, initial_state=state_in)
    return x, state_in, state_out, tf.layers.dense(outputs, 1, name="head")


def gather(states, streams):
    zeros = np.zeros(UNITS, np.float32)
    return [np.stack([states.get(stream, (zeros, zeros))[part] for stream in streams]) for part in (0, 1)]


def scatter(states, streams, c, h):
    for row, stream in enumerate(streams):
        states[stream] = (c[row], h[row])


def train_and_export(folder, rng):
    data = waves(rng, STREAMS, LENGTH)
    tf.set_random_seed(0)
    x, state_in, state_out, y = model()
    target = tf.placeholder(tf.float32, [None, None, 1])
    loss = tf.reduce_mean(tf.square(y - target))
    train_op = tf.train.AdamOptimizer(0.02).minimize(loss)
    states, losses = {}, []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(EPOCHS):
            for t in range(0, LENGTH, CHUNK):
                for first in range(0, STREAMS, ROWS):
                    rows = (np.arange(ROWS) + first + t // CHUNK) % STREAMS
                    if t == 0:
                        for stream in rows:
                            states.pop(stream, None)
                    c, h = gather(states, rows)
                    feed = {x: data[rows, t:t + CHUNK], target: data[rows, t + 1:t + CHUNK + 1],
                            state_in.c: c, state_in.h: h}
                    value, _, (c, h) = sess.run([loss, train_op, state_out], feed)
                    scatter(states, rows, c, h)
                    losses.append(value)
        streams = waves(rng, len(SERVED), 30)[:, :-1]
        zeros = np.zeros([len(SERVED), UNITS], np.float32)
        expected = sess.run(y, {x: streams, state_in.c: zeros, state_in.h: zeros})
        np.savez(os.path.join(folder, "expected.npz"), streams=streams, outputs=expected)
        tf.saved_model.simple_save(sess, os.path.join(folder, "model"),
                                   inputs={"inputs": x, "c": state_in.c, "h": state_in.h},
                                   outputs={"outputs": y, "c": state_out.c, "h": state_out.h})
    return np.mean(losses[:10]), np.mean(losses[-10:])


def serve(folder):
    data = np.load(os.path.join(folder, "expected.npz"))
    streams, expected = data["streams"], data["outputs"]
    with tf.Session() as sess:
        signature = tf.saved_model.loader.load(sess, ["serve"], os.path.join(folder, "model")).signature_def
        tensors = lambda infos: {name: sess.graph.get_tensor_by_name(info.name) for name, info in infos.items()}
        inputs, outputs = tensors(signature["serving_default"].inputs), tensors(signature["serving_default"].outputs)
        states = {}  # the client keeps every stream's state between requests
        rng, position = np.random.RandomState(1), np.zeros(len(SERVED), int)
        served = np.zeros_like(expected)
        while (position < streams.shape[1]).any():
            rows = [r for r in rng.permutation(len(SERVED)) if position[r] < streams.shape[1]][:rng.randint(1, 4)]
            names = [SERVED[r] for r in rows]
            c, h = gather(states, names)
            feed = {inputs["inputs"]: np.stack([streams[r, position[r]:position[r] + 1] for r in rows]),
                    inputs["c"]: c, inputs["h"]: h}
            values, c, h = sess.run([outputs["outputs"], outputs["c"], outputs["h"]], feed)
            scatter(states, names, c, h)
            served[rows, position[rows]] = values[:, 0]
            position[rows] += 1
    error = np.abs(served - expected).max()
    assert error < 1e-5, "interleaved serving differs from each stream alone by %g" % error
    print("served %d streams, %d steps each, interleaved, the client carrying the state: max error %.1e"
          % (len(SERVED), streams.shape[1], error))


def main():
    rng = np.random.RandomState(0)
    with tempfile.TemporaryDirectory() as folder:
        first, last = train_and_export(folder, rng)
        assert last < first / 3, "training did not lower the loss enough: %.4f -> %.4f" % (first, last)
        server = subprocess.Popen([sys.executable, __file__, "--serve", folder], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        out, err = server.communicate()
        assert server.returncode == 0, err[-3000:]
    print("keyed_streams: loss %.4f -> %.4f over %d streams, state in a Python dict; %s"
          % (first, last, STREAMS, out.decode().strip()))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    else:
        main()
