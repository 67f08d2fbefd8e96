"""Per-step cost of an RNN's state kept on its worker (tfstate's placement) or on a parameter server, on loopback.

    python -m tfstate.benchmarks.placement [--quick] [--rounds N] [--json PATH]

A TensorFlow gRPC cluster on 127.0.0.1: one ps process, and this process as the worker. In
every variant the weights are on the ps (`replica_device_setter`) and the RNN runs on the
worker; only the state moves. Each chunk is timed streaming (`[outputs, keep]`) and training
(`[sgd_step, keep]`), alternating variants, with a zero-state `dynamic_rnn` (nothing kept) as
the baseline. A traced run of each variant records where its state's ops ran.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

import tfstate
from tfstate import cluster as tf_cluster
from tfstate.benchmarks import common

v1 = tf.compat.v1
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(tfstate.__file__)))
QUICK_CONFIGS = [common.Config(batch=4, input=8, hidden=16, steps=5)]
FULL_CONFIGS = [common.Config(), common.Config(batch=256, steps=10)]  # the second: many streams, short chunks


def _serve_ps(cluster):
    """The ps process: serves until it is killed."""
    tf_cluster.start_server(cluster, "ps", 0).join()


def _start_cluster():
    """Starts a ps process and this process's worker server on free ports (new ones if a port was taken)."""
    for _ in range(3):
        cluster = tf_cluster.loopback_cluster(num_ps=1, num_workers=1)
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_PACKAGE_PARENT, os.environ.get("PYTHONPATH")]))
        )
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        ps = subprocess.Popen(
            [sys.executable, "-m", "tfstate.benchmarks.placement", "--serve-ps", json.dumps(cluster)],
            cwd=tempfile.gettempdir(),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            server = tf_cluster.start_server(cluster, "worker", 0)
            tf_cluster.wait_for_cluster(cluster, timeout_s=120)
            return ps, server
        except (tf.errors.UnknownError, TimeoutError):
            ps.kill()
            ps.wait()
    raise RuntimeError("no free loopback ports after 3 tries")


def _state_devices(sess, fetches, state):
    """The devices a traced run of `fetches` ran `state`'s ops on."""
    metadata = v1.RunMetadata()
    sess.run(fetches, options=v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE), run_metadata=metadata)
    return sorted(
        {
            stats.device
            for stats in metadata.step_stats.dev_stats
            for node in stats.node_stats
            if node.node_name.startswith(f"{state.name}/")
        }
    )


def measure(server, config, settings):
    """Times the variants for `config` on the cluster `server` belongs to; returns the rows and the placements."""
    inputs = common.random_inputs(config)
    graph = tf.Graph()
    with graph.as_default(), v1.device(v1.train.replica_device_setter(ps_tasks=1, worker_device="/job:worker/task:0")):
        x = tf.constant(inputs)
        cell = tfstate.LSTMCell(config.hidden)
        baseline, _ = v1.nn.dynamic_rnn(cell, x, dtype=tf.float32, scope="rnn")
        rnns = {
            "worker": tfstate.stateful_dynamic_rnn(cell, x, batch_size=config.batch, name="on_worker"),
            "ps": tfstate.stateful_dynamic_rnn(
                cell, x, batch_size=config.batch, name="on_ps", state_device="/job:ps/task:0"
            ),
        }
        optimizer = v1.train.GradientDescentOptimizer(1e-4)
        steps = {where: optimizer.minimize(tf.reduce_mean(tf.square(rnn.outputs))) for where, rnn in rnns.items()}
        train_baseline = optimizer.minimize(tf.reduce_mean(tf.square(baseline)))
    with v1.Session(server.target, graph=graph) as sess:
        sess.run([v1.global_variables_initializer(), v1.local_variables_initializer()])
        streaming = {"dynamic_rnn, zero state": (baseline,)}
        training = {"dynamic_rnn, zero state": (train_baseline,)}
        for where, rnn in rnns.items():
            streaming[f"keep, state on {where}"] = (rnn.outputs, rnn.keep)
            training[f"keep, state on {where}"] = (steps[where], rnn.keep)
        placements = {
            where: _state_devices(sess, streaming[f"keep, state on {where}"], rnn.state) for where, rnn in rnns.items()
        }
        result = {
            "config": config.__dict__,
            "state_bytes": 2 * config.batch * config.hidden * 4,
            "placement": placements,
        }
        for kind, variants in (("streaming", streaming), ("training", training)):
            times = common.time_alternating({name: (lambda f=f: sess.run(f)) for name, f in variants.items()}, settings)
            rows = {name: common.summarize(seconds) for name, seconds in times.items()}
            base = rows["dynamic_rnn, zero state"]["median_ms"]
            for row in rows.values():
                row["ratio"] = row["median_ms"] / base
            result[kind] = rows
    return result


def markdown(results):
    """The results as a Markdown table: ms per chunk (median, min–max) and the ratio to the zero-state baseline."""
    lines = ["| workload | variant | median ms | min–max ms | × zero-state |", "|---|---|---|---|---|"]
    for result in results:
        config = common.Config(**result["config"])
        for kind in ("streaming", "training"):
            for name, row in result[kind].items():
                lines.append(
                    f"| {kind}, batch {config.batch}, hidden {config.hidden}, {config.steps} steps "
                    f"(state {result['state_bytes'] / 1024:g} KiB) | {name} | {row['median_ms']:.2f} | "
                    f"{row['min_ms']:.2f}–{row['max_ms']:.2f} | {row['ratio']:.2f} |"
                )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny config, few repeats: checks the harness works")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 10, quick 2)")
    parser.add_argument("--json", dest="json_path", help="write the results here as JSON")
    parser.add_argument("--serve-ps", help=argparse.SUPPRESS)  # the ps process: its cluster spec as JSON
    args = parser.parse_args(argv)
    if args.serve_ps:
        _serve_ps(json.loads(args.serve_ps))
        return 0
    settings = common.QUICK_SETTINGS if args.quick else common.FULL_SETTINGS
    if args.rounds:
        settings = common.Settings(settings.warmup, args.rounds, settings.runs)
    ps, server = _start_cluster()
    try:
        started = time.perf_counter()
        results = [measure(server, config, settings) for config in (QUICK_CONFIGS if args.quick else FULL_CONFIGS)]
    finally:
        ps.kill()
        ps.wait()
    print(markdown(results))
    if args.json_path:
        common.write_result(
            args.json_path,
            {"machine": common.machine_info(), "seconds": time.perf_counter() - started, "results": results},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
