"""TensorFlow's gRPC cluster for stateful training: start a task, wait for the others, all with errors that say why.

    cluster = {"ps": ["ps0:2222"], "worker": ["worker0:2222", "worker1:2222"]}   # the same in every process
    server = start_server(cluster, "worker", 1)          # TensorFlow's error, plus a hint, if the spec is wrong
    wait_for_cluster(cluster)                            # instead of waiting forever for a task that is not there
    with tf.compat.v1.device(tf.compat.v1.train.replica_device_setter(
            cluster=cluster, worker_device="/job:worker/task:1")):
        rnn = tfstate.stateful_dynamic_rnn(cell, x)       # weights on the ps, the state on this worker

`loopback_cluster` gives a spec of free ports on this machine, for trying it out and for tests.
TensorFlow is the runtime; this module only starts it with clearer failures (docs/scaling.md).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Collection, Mapping, Sequence

import tensorflow as tf


def loopback_cluster(num_ps: int = 1, num_workers: int = 2) -> dict[str, list[str]]:
    """A cluster spec dict of `num_ps` "ps" and `num_workers` "worker" tasks on free ports of 127.0.0.1.

    The ports are free on every interface (a TensorFlow server listens on all of them) and
    distinct, when this returns; another process may still take one before the task starts, so
    a launcher retries with a new spec when a task cannot bind its port (`start_server` raises
    `tf.errors.UnknownError`).
    """
    sockets = []
    try:
        for _ in range(num_ps + num_workers):
            sockets.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sockets[-1].bind(("", 0))
        addresses = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    return {"ps": addresses[:num_ps], "worker": addresses[num_ps:]}


def _jobs(cluster):
    spec = tf.train.ClusterSpec(cluster).as_dict()
    return {
        job: tasks if isinstance(tasks, list) else [tasks[index] for index in sorted(tasks)]
        for job, tasks in spec.items()
    }


def _summary(jobs):
    return ", ".join(f"'{job}' ({len(tasks)} task{'s' * (len(tasks) != 1)})" for job, tasks in sorted(jobs.items()))


def _hint(error, jobs, job_name, task_index):
    message = error.message
    if "was not defined" in message:
        return (
            f"The cluster spec has the jobs {_summary(jobs)}, so job_name '{job_name}' with task_index "
            f"{task_index} is not one of its tasks: start each process as one task of the spec (task_index "
            "counts from 0), with the same spec in every process."
        )
    if "Could not parse port" in message:
        return "Every address in the cluster spec must be 'host:port'."
    address = jobs.get(job_name, [None] * (task_index + 1))[task_index]
    if "Could not start gRPC server" in message:
        return (
            f"'{job_name}' task {task_index} could not listen on the port of its address '{address}': another "
            "process has it (an earlier run still alive, or two tasks given the same address), or the port is "
            "not allowed. Give every task its own free port; start each task on the machine its address names."
        )
    return f"Starting '{job_name}' task {task_index} ('{address}') of the cluster {jobs}."


def start_server(
    cluster: Mapping[str, Sequence[str]] | tf.train.ClusterSpec,
    job_name: str,
    task_index: int,
    config: tf.compat.v1.ConfigProto | None = None,
) -> tf.distribute.Server:
    """Starts this process's task of `cluster`: a `tf.distribute.Server` (TensorFlow's gRPC runtime).

    Args:
      cluster: a dict {job name: ["host:port", ...]} or a `tf.train.ClusterSpec`, the same in every process.
      job_name: this process's job ("ps", "worker", ...).
      task_index: this process's task within its job.
      config: an optional `tf.compat.v1.ConfigProto` for the server's sessions.

    Raises:
      tf.errors.OpError: the error TensorFlow gives (its type and message), with a hint added that
        names the spec's jobs and the likely fix: `InternalError` for a job or task not in the spec,
        `UnknownError` for a port it cannot listen on, `InvalidArgumentError` for an address
        without a port.
    """
    jobs = _jobs(cluster)
    try:
        return tf.distribute.Server(
            tf.train.ClusterSpec(cluster), job_name=job_name, task_index=task_index, config=config, start=True
        )
    except tf.errors.OpError as error:
        raise type(error)(
            error.node_def, error.op, f"{error.message.rstrip('.')}. {_hint(error, jobs, job_name, task_index)}"
        ) from error


def _reachable(address, timeout_s):
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def wait_for_cluster(
    cluster: Mapping[str, Sequence[str]] | tf.train.ClusterSpec,
    timeout_s: float = 60.0,
    jobs: Collection[str] | None = None,
) -> None:
    """Waits until every task of `cluster` (or of the `jobs` named) accepts connections.

    TensorFlow itself waits without end for a task that is not there (it logs "CreateSession
    still waiting for response from worker"), as it does when processes were given different
    specs. Call this before the first session run to get an error instead.

    Raises:
      TimeoutError: naming the tasks that did not answer within `timeout_s` seconds, and the fix.
    """
    tasks = [
        (job, index, address)
        for job, addresses in sorted(_jobs(cluster).items())
        if jobs is None or job in jobs
        for index, address in enumerate(addresses)
    ]
    deadline = time.monotonic() + timeout_s
    while True:
        tasks = [task for task in tasks if not _reachable(task[2], timeout_s=1.0)]
        if not tasks:
            return
        if time.monotonic() >= deadline:
            missing = ", ".join(f"'{job}' task {index} at {address}" for job, index, address in tasks)
            raise TimeoutError(
                f"No answer within {timeout_s:g} s from {missing}. Check that each task is started (its "
                "process did not fail), that its address is right, and that every process got the same "
                "cluster spec."
            )
        time.sleep(0.1)
