"""`tfstate demo`: a stateful LSTM trained with truncated backprop on generated streams, then generating.

What it shows, end to end, in TF1 session style:
  1. 16 independent streams (noisy sums of two sines, one frequency pair per stream) are read
     chunk by chunk; the LSTM's state is kept across chunks (StatefulSession.run), and every pass
     over the streams starts from zero state with the step flag (step=0);
  2. after training, the model reads the beginning of fresh streams and then generates their
     continuation in-graph (tfstate.generate, one session.run), starting from the carried state;
  3. it reports the error of that continuation over near and far horizons next to two baselines
     (repeating the last value read, and each stream's mean): a generated sine drifts in phase as
     it goes, so the near horizon is where a model shows, and the far one is said plainly;
  4. a PNG shows true vs generated continuations and a heatmap of the per-timestep cell states
     (tfstate.dynamic_rnn_with_states).
"""

import dataclasses
import os
import time

import numpy as np

STREAMS, CHUNK, UNITS = 16, 50, 64
STREAM_LENGTH = 1000
CONTEXT, HORIZON = 300, 150
HORIZONS = ((1, 25), (26, 75), (76, 150))  # steps after the context, for the error table
TEST_STREAMS = 8


def configure(parser):
    parser.add_argument(
        "--steps",
        type=int,
        default=1500,
        help=f"training steps, one chunk of {CHUNK} timesteps each (default: 1500, about 30 s)",
    )
    parser.add_argument(
        "--out", default="tfstate_out", help="folder for the plot (created if missing; default: tfstate_out)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for data and weights (default: 0)")


def make_streams(rng, count, length):
    """`count` streams of `length` steps: noisy sums of two sines with per-stream frequencies. [count, length, 1]"""
    t = np.arange(length)[None, :]
    slow = rng.uniform(0.02, 0.05, (count, 1))
    fast = rng.uniform(0.08, 0.15, (count, 1))
    phase = rng.uniform(0, 2 * np.pi, (count, 2))
    wave = 0.6 * np.sin(2 * np.pi * slow * t + phase[:, :1]) + 0.4 * np.sin(2 * np.pi * fast * t + phase[:, 1:])
    return (wave + rng.normal(0, 0.02, wave.shape)).astype(np.float32)[:, :, None]


@dataclasses.dataclass
class Result:
    """What a demo run produced: the training losses and the test streams read and continued."""

    losses: list
    streams: np.ndarray  # [TEST_STREAMS, CONTEXT + HORIZON + 1, 1], the test streams
    continuation: np.ndarray  # [TEST_STREAMS, HORIZON], generated after reading CONTEXT steps
    cell_states: np.ndarray  # [time, units], layer 0's c at every step of test stream 0's context

    @property
    def truth(self):
        return self.streams[:, CONTEXT + 1 : CONTEXT + 1 + HORIZON, 0]

    def errors(self):
        """[(first, last, model MSE, last-value MSE, stream-mean MSE)] over each of HORIZONS."""
        last_value = self.streams[:, CONTEXT : CONTEXT + 1, 0]
        mean = self.streams[:, : CONTEXT + 1, 0].mean(axis=1, keepdims=True)  # what the model has read
        rows = []
        for first, last in HORIZONS:
            truth = self.truth[:, first - 1 : last]
            rows.append(
                (
                    first,
                    last,
                    float(np.mean((self.continuation[:, first - 1 : last] - truth) ** 2)),
                    float(np.mean((truth - last_value) ** 2)),
                    float(np.mean((truth - mean) ** 2)),
                )
            )
        return rows


def _progress(iterable, total):
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc="training", unit="chunk", mininterval=0.5)


def train_and_generate(steps, seed=0, progress=_progress):
    """Trains the demo's model for `steps` chunks, then reads and continues unseen streams; returns a `Result`."""
    import tensorflow as tf

    import tfstate

    rng = np.random.RandomState(seed)
    train_streams = make_streams(rng, STREAMS, STREAM_LENGTH + 1)
    test_streams = make_streams(rng, TEST_STREAMS, CONTEXT + HORIZON + 1)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        x = tf.compat.v1.placeholder(tf.float32, [None, None, 1], name="x")
        target = tf.compat.v1.placeholder(tf.float32, [None, None, 1], name="target")
        cell = tfstate.MultiRNNCell([tfstate.LSTMCell(UNITS), tfstate.LSTMCell(UNITS)])
        rnn = tfstate.stateful_dynamic_rnn(cell, x)
        prediction = tfstate.layers.dense(rnn.outputs, 1, name="head")
        loss = tf.reduce_mean(tf.square(prediction - target))
        train_op = tf.compat.v1.train.AdamOptimizer(0.005).minimize(loss)

        first = tf.compat.v1.placeholder(tf.float32, [None, 1], name="first")
        horizon = tf.compat.v1.placeholder(tf.int32, [], name="horizon")
        head = lambda output: tfstate.layers.dense(output, 1, name="head", reuse=True)
        generated_outputs, _ = tfstate.generate(cell, first, horizon, head, initial_state=rnn)
        generated = head(generated_outputs)  # the LSTM outputs through the same head: the generated values
        _, traced_states, _ = tfstate.dynamic_rnn_with_states(cell, x, dtype=tf.float32)

        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            stateful = tfstate.StatefulSession(sess, rnn)
            chunks_per_pass = STREAM_LENGTH // CHUNK
            losses = []
            bar = progress(range(steps), steps)
            for step in bar:
                start = (step % chunks_per_pass) * CHUNK
                feed = {
                    x: train_streams[:, start : start + CHUNK],
                    target: train_streams[:, start + 1 : start + CHUNK + 1],
                }
                _, value = stateful.run([train_op, loss], feed, step=0 if start == 0 else None)
                losses.append(value)
                if hasattr(bar, "set_postfix") and step % 10 == 0:
                    bar.set_postfix(loss=f"{np.mean(losses[-10:]):.4f}")

            # read the context of unseen streams (carrying state), then generate their continuation
            stateful.run(rnn.outputs, {x: test_streams[:, :CONTEXT]}, step=0)
            continuation = sess.run(generated, {first: test_streams[:, CONTEXT], horizon: HORIZON})
            states = sess.run(traced_states, {x: test_streams[:1, :CONTEXT]})
    return Result(losses, test_streams, continuation[:, :, 0], states[0].c[0])


def _headline(result):
    """The demo's report: the error of the generated continuation over each horizon, beside the baselines."""
    lines = [
        f"generated {HORIZON} steps in-graph after reading {CONTEXT}; error (MSE) of the continuation:",
        "  steps ahead   generated   repeat last value   stream mean",
    ]
    for first, last, model, last_value, mean in result.errors():
        lines.append(f"  {first:>4}-{last:<4}     {model:8.4f}   {last_value:17.4f}   {mean:11.4f}")
    first, last, model, last_value, mean = result.errors()[0]
    best = min(last_value, mean)
    verdict = "better than" if model < best else "not better than"
    lines.append(
        f"the first {last} generated steps are {verdict} both baselines ({model:.4f} vs {best:.4f}); "
        "further out a generated sine drifts in phase, so its error grows towards the baselines'"
    )
    return lines


def _plot(result, steps, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), gridspec_kw={"height_ratios": [3, 2]})
    shown = result.streams[:4]
    for stream, offset in zip(range(len(shown)), np.arange(len(shown)) * 2.5):
        top.plot(
            np.arange(CONTEXT + 1),
            shown[stream, : CONTEXT + 1, 0] + offset,
            color="0.6",
            lw=1,
            label="context (read, state carried)" if stream == 0 else None,
        )
        ahead = np.arange(CONTEXT + 1, CONTEXT + 1 + HORIZON)
        top.plot(
            ahead,
            result.truth[stream] + offset,
            color="black",
            lw=1,
            label="true continuation" if stream == 0 else None,
        )
        top.plot(
            ahead,
            result.continuation[stream] + offset,
            color="tab:red",
            lw=1.2,
            ls="--",
            label="generated in-graph (tfstate.generate)" if stream == 0 else None,
        )
    top.axvline(CONTEXT, color="tab:blue", lw=0.8)
    first, last, model, last_value, mean = result.errors()[0]
    top.set_title(
        f"Stateful LSTM, {steps} chunks of truncated backprop. Generated steps {first}-{last}: MSE "
        f"{model:.4f} (repeat last value {last_value:.4f}, stream mean {mean:.4f})",
        fontsize=10,
    )
    top.set_yticks([])
    top.legend(loc="upper left", fontsize=8)
    cell_states = result.cell_states.T  # [units, time]
    image = bottom.imshow(
        cell_states,
        aspect="auto",
        cmap="RdBu_r",
        vmin=-np.abs(cell_states).max(),
        vmax=np.abs(cell_states).max(),
        interpolation="nearest",
    )
    bottom.set_title("Cell state c of layer 0 at every timestep (tfstate.dynamic_rnn_with_states), stream 0")
    bottom.set_xlabel("timestep")
    bottom.set_ylabel("unit")
    figure.colorbar(image, ax=bottom)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def run(args):
    if args.steps < 1:
        print(f"tfstate demo: --steps must be at least 1; got {args.steps}.")
        return 2
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("tfstate demo needs matplotlib for its plot: pip install 'tfstate[demo]'")
        return 2
    started = time.time()
    result = train_and_generate(args.steps, args.seed)
    print(
        f"training loss: first 10 chunks {np.mean(result.losses[:10]):.4f}, "
        f"last 10 chunks {np.mean(result.losses[-10:]):.4f}"
    )
    print("\n".join(_headline(result)))
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "tfstate_demo.png")
    _plot(result, args.steps, path)
    print(f"wrote {os.path.abspath(path)} ({time.time() - started:.0f} s)")
    return 0
