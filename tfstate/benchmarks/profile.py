"""Where a chunk's time goes: one traced run (`RunOptions.FULL_TRACE`) of the plain and the fast paths.

    python -m tfstate.benchmarks.profile [--layers N] [--training] [--gru]

(`--training`: one SGD step with keep instead of a forward chunk; `--gru`: GRU cells instead of LSTMs.)

Prints, per path, the wall time of the traced run, the number of nodes executed, and the op
types that took the most time (summed over the run, loop iterations included).
"""

import argparse
import collections
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from tfstate import native
from tfstate.benchmarks.common import Config
from tfstate.benchmarks.tf_graph import stateful, training_step


def traced_op_times(sess, fetches):
    """(nodes executed, {op type: total microseconds}) of one FULL_TRACE run of `fetches`."""
    metadata = tf.compat.v1.RunMetadata()
    options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
    sess.run(fetches, options=options, run_metadata=metadata)
    times, nodes = collections.Counter(), 0
    for device in metadata.step_stats.dev_stats:
        for node in device.node_stats:
            label = (
                node.timeline_label.split(" = ")[-1].split("(")[0] if " = " in node.timeline_label else node.node_name
            )
            times[label] += node.op_end_rel_micros - node.op_start_rel_micros
            nodes += 1
    return nodes, times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--top", type=int, default=6)
    parser.add_argument("--training", action="store_true", help="profile one SGD step (forward, backward, update)")
    parser.add_argument("--gru", action="store_true", help="GRU cells (GRUCell, GRUBlockCellV2) instead of LSTMs")
    args = parser.parse_args(argv)
    config = Config(layers=args.layers)
    inputs = np.random.RandomState(0).randn(config.batch, config.steps, config.input).astype(np.float32)
    plain = (
        "GRUCell (stateful_dynamic_rnn runs it whole-chunk)" if args.gru and not args.training else "plain dynamic_rnn"
    )
    paths = [(plain, False, "auto"), ("fast path, XLA", True, "xla")]
    if native.status() is None and not args.gru:
        paths.append(("fast path, compiled kernel", True, "native"))
    for name, fast, implementation in paths:
        if args.training:
            run_once, sess, fetches = training_step(config, inputs, fast, implementation, gru=args.gru)
        else:
            run_once, sess, rnn = stateful(config, inputs, fast, implementation, gru=args.gru)
            fetches = [rnn.outputs, rnn.keep]
        for _ in range(5):
            run_once()
        with sess.graph.as_default():
            nodes, times = traced_op_times(sess, fetches)
        what = "SGD step" if args.training else "chunk"
        kind = "GRU" if args.gru else "LSTM"
        op_ms = sum(times.values()) / 1e3
        print(f"{name} + keep, {kind} {what}, {config.name}: {nodes} nodes, {op_ms:.1f} ms of op time")
        for label, micros in times.most_common(args.top):
            print(f"    {label:32s} {micros / 1e3:7.2f} ms")


if __name__ == "__main__":
    main()
