"""Distributed stateful training on TensorFlow's gRPC cluster: weights on a parameter server, streams on workers.

    python legacy_examples/distributed/stateful_training.py      # 1 ps + 2 workers on this machine, then checks

    # one task per machine, the same hosts in every command (TF1's flags):
    python stateful_training.py --ps_hosts=h0:2222 --worker_hosts=h1:2222,h2:2222 --job_name=ps --task_index=0
    python stateful_training.py --ps_hosts=h0:2222 --worker_hosts=h1:2222,h2:2222 --job_name=worker --task_index=0
    python stateful_training.py --ps_hosts=h0:2222 --worker_hosts=h1:2222,h2:2222 --job_name=worker --task_index=1

Between-graph replication, as in TF1's distributed guide: every worker builds the whole graph
under `replica_device_setter` (variables on the ps, ops on the worker) and trains
asynchronously in a `MonitoredTrainingSession`. The weights are shared on the ps; each worker
reads its own streams, whose state tfstate keeps on that worker (`tfstate.StateHook` carries it
every run), so no state crosses the network and no worker overwrites another's streams.

A worker trains on its streams (the state kept across chunks, reset every pass with the step
flag), waits for the others, then reads a new stream chunk by chunk in lockstep with them, with
its own state and with a state put on the ps (where replica_device_setter puts TF1's state
variables). Checks, in the one-command run: the state's ops ran on their worker and the weights
on the ps (a traced run's RunMetadata); every worker's loss fell; all see the same weights; each
worker's stream read in chunks equals its one long run; with the state on the ps, it does not.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import tfstate
import tfstate.cluster

BATCH, CHUNK, CHUNKS_PER_PASS, UNITS = 4, 10, 4, 16
TRAIN_RUNS, CHECK_CHUNKS = 48, 3
PORT_TAKEN = 75  # a task's exit status when its port was taken: the launcher starts again on other ports
TIMEOUT_S = 240


def streams(task, seed):
    """[BATCH, time, 1] sine waves of worker `task` (each worker its own frequency), random phases."""
    phases = np.random.RandomState(seed).uniform(0, 2 * np.pi, [BATCH, 1])
    steps = np.arange(CHUNK * CHUNKS_PER_PASS + 1)[None, :]
    return np.sin((0.2 + 0.1 * task) * steps + phases).astype(np.float32)[:, :, None]


def chunk(stream, index):
    """Inputs and next-value targets of chunk `index`."""
    return stream[:, index * CHUNK : (index + 1) * CHUNK], stream[:, index * CHUNK + 1 : (index + 1) * CHUNK + 1]


def placement(run_metadata, state_name, weights):
    """Where a traced run ran the state's ops (the nodes under its name) and the weights' variables."""
    devices = {node.node_name: stats.device for stats in run_metadata.step_stats.dev_stats for node in stats.node_stats}
    return {
        "state": sorted({device for name, device in devices.items() if name.startswith(f"{state_name}/")}),
        "weights": {weight.op.name: devices[weight.op.name] for weight in weights},
    }


def run_worker(cluster, task, report):
    try:
        server = tfstate.cluster.start_server(cluster, "worker", task)
    except tf.errors.UnknownError as error:
        print(error, file=sys.stderr)
        sys.exit(PORT_TAKEN)
    tfstate.cluster.wait_for_cluster(cluster)
    workers = len(cluster["worker"])
    tf.compat.v1.disable_eager_execution()
    with tf.compat.v1.device(
        tf.compat.v1.train.replica_device_setter(cluster=cluster, worker_device=f"/job:worker/task:{task}")
    ):
        x = tf.compat.v1.placeholder(tf.float32, [BATCH, None, 1], name="x")
        y = tf.compat.v1.placeholder(tf.float32, [BATCH, None, 1], name="y")
        cell = tfstate.LSTMCell(UNITS)
        rnn = tfstate.stateful_dynamic_rnn(cell, x, batch_size=BATCH)  # its state: on this worker
        loss = tf.reduce_mean(tf.square(tfstate.layers.dense(rnn.outputs, 1, name="head") - y))
        global_step = tf.compat.v1.train.get_or_create_global_step()
        train_op = tf.compat.v1.train.AdamOptimizer(0.01).minimize(loss, global_step=global_step)
        # the pitfall, for the checks: a state on the ps (same name in every worker, so one state)
        on_ps = tfstate.stateful_dynamic_rnn(
            cell, x, batch_size=BATCH, name="state_on_ps", state_device="/job:ps/task:0"
        )
        long_run, _ = tf.compat.v1.nn.dynamic_rnn(cell, x, dtype=tf.float32, scope="long_run")  # from zeros
        arrivals = tf.compat.v1.Variable(0, trainable=False, name="arrivals")  # on the ps: a barrier
        arrive = arrivals.assign_add(1)
    weights = tf.compat.v1.trainable_variables()

    if task != 0:  # MonitoredTrainingSession would poll the chief's initialization only every 30 s
        uninitialized = tf.compat.v1.report_uninitialized_variables(tf.compat.v1.global_variables())
        with tf.compat.v1.Session(server.target) as sess:
            while len(sess.run(uninitialized)):
                time.sleep(0.1)
    train_stream, check_stream = streams(task, seed=task), streams(task, seed=100 + task)
    losses, metadata = [], tf.compat.v1.RunMetadata()
    with tf.compat.v1.train.MonitoredTrainingSession(
        master=server.target,
        is_chief=task == 0,
        hooks=[tfstate.StateHook(rnn)],
        log_step_count_steps=None,
        save_summaries_steps=None,
        save_summaries_secs=None,
    ) as sess:

        def raw(fetches, feed=None):  # a run without the hooks, for runs that do not feed the RNN's inputs
            return sess.run_step_fn(lambda step_context: step_context.session.run(fetches, feed))

        def barrier(rounds):
            raw(arrive)
            while raw(arrivals) < rounds * workers:
                time.sleep(0.05)

        for run in range(TRAIN_RUNS):
            inputs, targets = chunk(train_stream, run % CHUNKS_PER_PASS)
            feed = {x: inputs, y: targets, rnn.step: 0 if run % CHUNKS_PER_PASS == 0 else -1}
            traced = (
                dict(
                    options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE),
                    run_metadata=metadata,
                )
                if run == 0
                else {}
            )
            losses.append(float(sess.run([train_op, loss], feed, **traced)[1]))
        barrier(1)  # every worker has trained: the weights stay as they are from here
        final_weights = raw(weights)
        kept, shared = [], []
        for index in range(CHECK_CHUNKS):
            barrier(2 + index)  # lockstep: every worker reads chunk `index` now
            outputs = sess.run(
                [rnn.outputs, on_ps.outputs, on_ps.keep],
                {
                    x: chunk(check_stream, index)[0],
                    rnn.step: 0 if index == 0 else -1,
                    on_ps.step: 0 if index == 0 else -1,
                },
            )
            kept.append(outputs[0])
            shared.append(outputs[1])
        whole = raw(long_run, {x: check_stream[:, : CHECK_CHUNKS * CHUNK]})
        barrier(2 + CHECK_CHUNKS)  # nobody closes the session while another still reads the shared state

    pass_loss = [float(np.mean(losses[start : start + CHUNKS_PER_PASS])) for start in (0, TRAIN_RUNS - CHUNKS_PER_PASS)]
    report.write_text(
        json.dumps(
            {
                "task": task,
                "state_device": rnn.state.device,
                "devices": placement(metadata, rnn.state.name, weights),
                "first_pass_loss": pass_loss[0],
                "last_pass_loss": pass_loss[1],
                "weights_sum": float(sum(np.abs(value).sum() for value in final_weights)),
                "kept_error": float(np.abs(np.concatenate(kept, axis=1) - whole).max()),
                "state_on_ps_error": float(np.abs(np.concatenate(shared, axis=1) - whole).max()),
            }
        )
    )


def run_ps(cluster, task):
    try:
        server = tfstate.cluster.start_server(cluster, "ps", task)
    except tf.errors.UnknownError as error:
        print(error, file=sys.stderr)
        sys.exit(PORT_TAKEN)
    server.join()


def _start_cluster(folder):
    """Starts 1 ps and 2 workers on free loopback ports; returns the spec and {(job, task): (process, log)}."""
    cluster = tfstate.cluster.loopback_cluster(num_ps=1, num_workers=2)
    hosts = [f"--ps_hosts={','.join(cluster['ps'])}", f"--worker_hosts={','.join(cluster['worker'])}"]
    tasks = {}
    for job, addresses in cluster.items():
        for task in range(len(addresses)):
            log = open(folder / f"{job}{task}.log", "w+")
            command = [
                sys.executable,
                __file__,
                *hosts,
                f"--job_name={job}",
                f"--task_index={task}",
                f"--report={folder / f'{job}{task}.json'}",
            ]
            tasks[job, task] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log
    return cluster, tasks


def _wait(tasks):
    """Waits for the workers (the ps serves until stopped); returns {(job, task): exit status} of those that ended."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        ended = {key: process.poll() for key, (process, _) in tasks.items() if process.poll() is not None}
        if any(status for status in ended.values()) or all(key in ended for key in tasks if key[0] == "worker"):
            return ended
        time.sleep(0.1)
    return {key: "timed out" for key, (process, _) in tasks.items() if process.poll() is None}


def launch(json_path=None):
    """Runs the cluster on loopback (again on other ports if one was taken), checks the workers' reports."""
    for _ in range(3):
        with tempfile.TemporaryDirectory() as temporary:
            folder = pathlib.Path(temporary)
            cluster, tasks = _start_cluster(folder)
            try:
                ended = _wait(tasks)
            finally:
                for process, log in tasks.values():
                    if process.poll() is None:
                        process.kill()
                    process.wait()
                    log.close()
            if PORT_TAKEN in ended.values():
                continue
            failed = {key: status for key, status in ended.items() if status}
            for job, task in failed:
                print(
                    f"{job} {task} ended with {failed[job, task]}:\n{(folder / f'{job}{task}.log').read_text()}",
                    file=sys.stderr,
                )
            if failed:
                return 1
            reports = [json.loads((folder / f"worker{task}.json").read_text()) for task in range(2)]
        if json_path:
            pathlib.Path(json_path).write_text(json.dumps({"cluster": cluster, "workers": reports}, indent=1))
        return check(cluster, reports)
    print("distributed_stateful: no free ports after 3 tries", file=sys.stderr)
    return 1


def check(cluster, reports):
    """The claims of the module docstring, from the workers' reports; prints a summary, returns the exit status."""
    problems = []
    for report in reports:
        task, devices = report["task"], report["devices"]
        if devices["state"] != [f"/job:worker/replica:0/task:{task}/device:CPU:0"]:
            problems.append(f"worker {task}'s state ran on {devices['state']}")
        if not all(device.startswith("/job:ps/") for device in devices["weights"].values()):
            problems.append(f"worker {task}'s weights were on {devices['weights']}")
        if not report["last_pass_loss"] < 0.5 * report["first_pass_loss"]:
            problems.append(f"worker {task}'s loss went from {report['first_pass_loss']} to {report['last_pass_loss']}")
        if not report["kept_error"] < 1e-5:
            problems.append(f"worker {task}'s stream in chunks is off its one long run by {report['kept_error']}")
    if len({report["weights_sum"] for report in reports}) != 1:
        problems.append(f"the workers see different weights: {[report['weights_sum'] for report in reports]}")
    if not max(report["state_on_ps_error"] for report in reports) > 1e-3:
        problems.append("the state on the ps did not mix the workers' streams")
    if problems:
        print("distributed_stateful: FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    losses = ", ".join(f"{report['first_pass_loss']:.3f} -> {report['last_pass_loss']:.3f}" for report in reports)
    print(
        f"distributed_stateful: 1 ps + {len(reports)} workers on loopback; each worker's state on that worker, "
        f"weights on {cluster['ps'][0]} (/job:ps/task:0); loss per worker {losses}; each worker's stream in "
        f"chunks == its one long run; a state put on the ps mixes the workers' streams (off by up to "
        f"{max(report['state_on_ps_error'] for report in reports):.2f})"
    )
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ps_hosts", help="comma-separated host:port of the parameter servers")
    parser.add_argument("--worker_hosts", help="comma-separated host:port of the workers")
    parser.add_argument("--job_name", choices=["ps", "worker"], help="this process's job (none: run all on loopback)")
    parser.add_argument("--task_index", type=int, default=0, help="this process's task in its job")
    parser.add_argument("--report", help="(a worker) where to write its JSON report")
    parser.add_argument("--json", help="(the loopback run) where to write the workers' reports")
    args = parser.parse_args(argv)
    if args.job_name is None:
        return launch(args.json)
    cluster = {"ps": args.ps_hosts.split(","), "worker": args.worker_hosts.split(",")}
    if args.job_name == "ps":
        run_ps(cluster, args.task_index)
    else:
        run_worker(cluster, args.task_index, pathlib.Path(args.report or os.devnull))
    return 0


if __name__ == "__main__":
    sys.exit(main())
