"""Recipe 6: many streams, one model: each stream's state kept by key in training, in a SavedModel, in serving.

TF1 kept per-stream state in Python: a dict of NumPy states gathered into each batch's initial
state with feed_dict and scattered back after the run; a server took the state in and gave it
out with every request (tf1/keyed_streams.py). With tfstate the state stays in the graph, in a
table keyed by stream, and in the SavedModel:

    krnn = tfstate.keyed_dynamic_rnn(cell, x, keys, capacity=1000)    # row i continues stream keys[i]
    sess.run([train_op, krnn.keep], {x: chunk, keys: ids, krnn.start: first_chunk_of_its_stream})
    tfstate.serving.export_saved_model(sess, "model", krnn, {"inputs": x}, {"outputs": y})
    step = tf.saved_model.load("model").signatures["step"]            # in the server
    step(keys=..., inputs=..., start=...)                             # each stream's state stays inside

Checks: training on batches drawn from many streams in turn, each row's state kept under its
stream's key, lowers the loss; a fresh process serving the SavedModel one step at a time for
interleaved streams gets each stream's outputs as if it ran alone; `end` drops a stream.
"""

import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import tfstate

UNITS, STREAMS, LENGTH, CHUNK, ROWS, EPOCHS = 16, 12, 120, 20, 4, 12
SERVED = ["ana", "ben", "cleo"]


def waves(rng, streams, length):
    """Sine waves of random period and phase, [streams, length + 1, 1] (the inputs, then the targets)."""
    period = rng.uniform(8, 24, (streams, 1))
    t = np.arange(length + 1)[None, :] + rng.uniform(0, 24, (streams, 1))
    return np.sin(2 * np.pi * t / period).astype(np.float32)[:, :, None]


def model(keys_dtype):
    """(x, keys, cell, keyed RNN, head outputs): the same variables in the training and the serving graph."""
    x = tf.compat.v1.placeholder(tf.float32, [None, None, 1], name="inputs")
    keys = tf.compat.v1.placeholder(keys_dtype, [None], name="keys")
    cell = tfstate.LSTMCell(UNITS)
    krnn = tfstate.keyed_dynamic_rnn(cell, x, keys, capacity=1000)
    return x, keys, cell, krnn, tfstate.layers.dense(krnn.outputs, 1, name="head")


def train(folder, rng):
    """Trains on chunks of STREAMS streams, ROWS at a time, state kept per stream; returns (first, last) loss."""
    data = waves(rng, STREAMS, LENGTH)
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session() as sess:
        tf.compat.v1.set_random_seed(0)
        x, keys, _, krnn, y = model(tf.int64)
        target = tf.compat.v1.placeholder(tf.float32, [None, None, 1])
        loss = tf.reduce_mean(tf.square(y - target))
        train_op = tf.compat.v1.train.AdamOptimizer(0.02).minimize(loss)
        sess.run(tf.compat.v1.global_variables_initializer())
        krnn.state.initialize_if_needed(sess)
        losses = []
        for _ in range(EPOCHS):
            for t in range(0, LENGTH, CHUNK):  # every stream's chunk t, ROWS streams per run
                for first in range(0, STREAMS, ROWS):
                    rows = (np.arange(ROWS) + first + t // CHUNK) % STREAMS  # rows meet other streams each time
                    feed = {
                        x: data[rows, t : t + CHUNK],
                        target: data[rows, t + 1 : t + CHUNK + 1],
                        keys: rows,
                        krnn.start: np.full(ROWS, t == 0),
                    }
                    losses.append(sess.run([loss, train_op, krnn.keep], feed)[0])
        tf.compat.v1.train.Saver().save(sess, os.path.join(folder, "weights"))  # weights only: the table stays out
    return np.mean(losses[:10]), np.mean(losses[-10:])


def export(folder, rng):
    """Restores the trained weights into a serving graph (string keys) and exports it; saves what serving must give."""
    streams = waves(rng, len(SERVED), 30)[:, :-1]
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session() as sess:
        x, keys, cell, krnn, y = model(tf.string)
        alone, _ = tf.compat.v1.nn.dynamic_rnn(cell, x, dtype=tf.float32, scope="rnn")  # each stream by itself
        expected = tfstate.layers.dense(alone, 1, name="head", reuse=True)
        tf.compat.v1.train.Saver(tf.compat.v1.global_variables()).restore(sess, os.path.join(folder, "weights"))
        np.savez(os.path.join(folder, "expected.npz"), streams=streams, outputs=sess.run(expected, {x: streams}))
        tfstate.serving.export_saved_model(sess, os.path.join(folder, "model"), krnn, {"inputs": x}, {"outputs": y})


def serve(folder):
    """A server process: one step per request, streams interleaved at random; checks each stream's outputs."""
    data = np.load(os.path.join(folder, "expected.npz"))
    streams, expected = data["streams"], data["outputs"]
    signatures = tf.saved_model.load(os.path.join(folder, "model")).signatures
    step, end = signatures["step"], signatures["end"]
    rng, position = np.random.RandomState(1), np.zeros(len(SERVED), int)
    served = np.zeros_like(expected)
    while (position < streams.shape[1]).any():
        rows = [r for r in rng.permutation(len(SERVED)) if position[r] < streams.shape[1]][: rng.randint(1, 4)]
        inputs = np.stack([streams[r, position[r] : position[r] + 1] for r in rows])
        outputs = step(
            keys=tf.constant([SERVED[r] for r in rows]),
            inputs=tf.constant(inputs),
            start=tf.constant(position[rows] == 0),
        )["outputs"].numpy()
        served[rows, position[rows]] = outputs[:, 0]
        position[rows] += 1
    error = np.abs(served - expected).max()
    assert error < 1e-5, f"interleaved serving differs from each stream alone by {error}"
    ended = end(keys=tf.constant(["ben", "nobody"]))["ended"].numpy()
    assert ended.tolist() == [True, False], ended
    print(
        f"served {len(SERVED)} streams, {streams.shape[1]} steps each, interleaved: max error {error:.1e}; "
        "end dropped 'ben'"
    )


def main():
    rng = np.random.RandomState(0)
    with tempfile.TemporaryDirectory() as folder:
        tf.compat.v1.disable_eager_execution()
        first, last = train(folder, rng)
        assert last < first / 3, f"training did not lower the loss enough: {first:.4f} -> {last:.4f}"
        export(folder, rng)
        server = subprocess.run([sys.executable, __file__, "--serve", folder], capture_output=True, text=True)
        assert server.returncode == 0, server.stderr[-3000:]
    print(f"keyed_streams: loss {first:.4f} -> {last:.4f} over {STREAMS} streams kept by key; {server.stdout.strip()}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    else:
        main()
