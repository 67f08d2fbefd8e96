"""`tfstate demo`: a stateful LSTM trained with truncated backprop on generated streams, then generating.

What it shows, end to end, in TF1 session style:
  1. 16 independent streams (noisy sums of two sines, one frequency pair per stream) are read
     chunk by chunk; the LSTM's state is kept across chunks (StatefulSession.run), and every pass
     over the streams starts from zero state with the step flag (step=0);
  2. after training, the model reads the beginning of fresh streams and then generates their
     continuation in-graph (tfstate.generate, one session.run), starting from the carried state;
  3. a PNG shows true vs generated continuations and a heatmap of the per-timestep cell states
     (tfstate.dynamic_rnn_with_states).
"""

import os
import time

import numpy as np

STREAMS, CHUNK, UNITS = 16, 50, 64
STREAM_LENGTH = 1000
CONTEXT, HORIZON = 300, 150


def configure(parser):
    parser.add_argument("--steps", type=int, default=1500,
                        help="training steps, one chunk of %d timesteps each (default: 1500, about 30 s)" % CHUNK)
    parser.add_argument("--out", default="tfstate_out",
                        help="folder for the plot (created if missing; default: tfstate_out)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data and weights (default: 0)")


def make_streams(rng, count, length):
    """`count` streams of `length` steps: noisy sums of two sines with per-stream frequencies. [count, length, 1]"""
    t = np.arange(length)[None, :]
    slow = rng.uniform(0.02, 0.05, (count, 1))
    fast = rng.uniform(0.08, 0.15, (count, 1))
    phase = rng.uniform(0, 2 * np.pi, (count, 2))
    wave = 0.6 * np.sin(2 * np.pi * slow * t + phase[:, :1]) + 0.4 * np.sin(2 * np.pi * fast * t + phase[:, 1:])
    return (wave + rng.normal(0, 0.02, wave.shape)).astype(np.float32)[:, :, None]


def _progress(iterable, total):
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc="training", unit="chunk", mininterval=0.5)


def run(args):
    if args.steps < 1:
        print(f"tfstate demo: --steps must be at least 1; got {args.steps}.")
        return 2
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("tfstate demo needs matplotlib for its plot: pip install 'tfstate[demo]'")
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    import tfstate

    tf.get_logger().setLevel("ERROR")
    started = time.time()
    rng = np.random.RandomState(args.seed)
    train_streams = make_streams(rng, STREAMS, STREAM_LENGTH + 1)
    test_streams = make_streams(rng, 4, CONTEXT + HORIZON + 1)

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(args.seed)
        x = tf.compat.v1.placeholder(tf.float32, [None, None, 1], name="x")
        target = tf.compat.v1.placeholder(tf.float32, [None, None, 1], name="target")
        cell = tfstate.MultiRNNCell([tfstate.LSTMCell(UNITS), tfstate.LSTMCell(UNITS)])
        rnn = tfstate.stateful_dynamic_rnn(cell, x)
        prediction = tfstate.layers.dense(rnn.outputs, 1, name="head")
        loss = tf.reduce_mean(tf.square(prediction - target))
        train_op = tf.compat.v1.train.AdamOptimizer(0.005).minimize(loss)

        first = tf.compat.v1.placeholder(tf.float32, [None, 1], name="first")
        horizon = tf.compat.v1.placeholder(tf.int32, [], name="horizon")
        head = lambda output: tfstate.layers.dense(output, 1, name="head", reuse=True)  # noqa: E731
        generated_outputs, _ = tfstate.generate(cell, first, horizon, head, initial_state=rnn)
        generated = head(generated_outputs)  # the LSTM outputs through the same head: the generated values
        _, traced_states, _ = tfstate.dynamic_rnn_with_states(cell, x, dtype=tf.float32)

        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            stateful = tfstate.StatefulSession(sess, rnn)
            chunks_per_pass = STREAM_LENGTH // CHUNK
            losses = []
            bar = _progress(range(args.steps), args.steps)
            for step in bar:
                start = (step % chunks_per_pass) * CHUNK
                feed = {x: train_streams[:, start:start + CHUNK], target: train_streams[:, start + 1:start + CHUNK + 1]}
                _, value = stateful.run([train_op, loss], feed, step=0 if start == 0 else None)
                losses.append(value)
                if hasattr(bar, "set_postfix") and step % 10 == 0:
                    bar.set_postfix(loss=f"{np.mean(losses[-10:]):.4f}")

            # read the context of unseen streams (carrying state), then generate their continuation
            context = test_streams[:, :CONTEXT]
            stateful.run(rnn.outputs, {x: context}, step=0)
            continuation = sess.run(generated, {first: test_streams[:, CONTEXT], horizon: HORIZON})
            truth = test_streams[:, CONTEXT + 1:CONTEXT + 1 + HORIZON, 0]
            states = sess.run(traced_states, {x: test_streams[:1, :CONTEXT]})

    mse_generated = float(np.mean((continuation[:, :, 0] - truth) ** 2))
    mse_mean = float(np.mean((truth - truth.mean(axis=1, keepdims=True)) ** 2))
    print(f"training loss: first 10 chunks {np.mean(losses[:10]):.4f}, last 10 chunks {np.mean(losses[-10:]):.4f}")
    print(f"generated {HORIZON} steps in-graph: MSE {mse_generated:.4f} "
          f"(predicting each stream's mean would give {mse_mean:.4f})")

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "tfstate_demo.png")
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), gridspec_kw={"height_ratios": [3, 2]})
    offsets = np.arange(len(test_streams)) * 2.5
    for stream, offset in zip(range(len(test_streams)), offsets):
        top.plot(np.arange(CONTEXT + 1), test_streams[stream, :CONTEXT + 1, 0] + offset, color="0.6", lw=1,
                 label="context (read, state carried)" if stream == 0 else None)
        top.plot(np.arange(CONTEXT + 1, CONTEXT + 1 + HORIZON), truth[stream] + offset, color="black", lw=1,
                 label="true continuation" if stream == 0 else None)
        top.plot(np.arange(CONTEXT + 1, CONTEXT + 1 + HORIZON), continuation[stream, :, 0] + offset, color="tab:red",
                 lw=1.2, ls="--", label="generated in-graph (tfstate.generate)" if stream == 0 else None)
    top.axvline(CONTEXT, color="tab:blue", lw=0.8)
    top.set_title(f"Stateful LSTM, {args.steps} chunks of truncated backprop: generation MSE {mse_generated:.4f} "
                  f"(stream-mean baseline {mse_mean:.4f})")
    top.set_yticks([])
    top.legend(loc="upper left", fontsize=8)
    cell_states = states[0].c[0].T  # layer 0's c, [units, time]
    image = bottom.imshow(cell_states, aspect="auto", cmap="RdBu_r", vmin=-np.abs(cell_states).max(),
                          vmax=np.abs(cell_states).max(), interpolation="nearest")
    bottom.set_title("Cell state c of layer 0 at every timestep (tfstate.dynamic_rnn_with_states), stream 0")
    bottom.set_xlabel("timestep")
    bottom.set_ylabel("unit")
    figure.colorbar(image, ax=bottom)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    print(f"wrote {os.path.abspath(path)} ({time.time() - started:.0f} s)")
    return 0
