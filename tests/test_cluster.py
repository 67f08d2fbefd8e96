"""TensorFlow's gRPC cluster on loopback, with processes the tests start: where the state runs, each worker's
streams, training, the placement benchmark, and the errors a wrong cluster spec gets.

Marked `cluster`: `python -m pytest -m cluster` runs them alone (they run in the default suite too).
The oracles: the device each op ran on (RunMetadata traces), each worker's stream read in chunks
against its own one long run from zeros, and the same run with the state put on the ps.
"""

import concurrent.futures
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import tfstate
from tfstate import cluster

pytestmark = pytest.mark.cluster

REPO = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "legacy_examples" / "distributed" / "stateful_training.py"
TIMEOUT_S = 300


def _run(command, cwd):
    path = os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": path}
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The processes of this file, started together: the example on loopback, a worker given a task the spec does
    not have, and the placement benchmark. Returns {name: (CompletedProcess, JSON it wrote or None)}."""
    folder = tmp_path_factory.mktemp("cluster")
    spec = cluster.loopback_cluster(num_ps=1, num_workers=2)
    commands = {
        "example": [sys.executable, str(EXAMPLE), f"--json={folder / 'example.json'}"],
        "wrong_task": [
            sys.executable,
            str(EXAMPLE),
            f"--ps_hosts={spec['ps'][0]}",
            f"--worker_hosts={','.join(spec['worker'])}",
            "--job_name=worker",
            "--task_index=2",
        ],
        "benchmark": [
            sys.executable,
            "-m",
            "tfstate.benchmarks.placement",
            "--quick",
            f"--json={folder / 'bench.json'}",
        ],
    }
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(commands)) as pool:
        futures = {name: pool.submit(_run, command, folder) for name, command in commands.items()}
        processes = {name: future.result() for name, future in futures.items()}
    written = {"example": folder / "example.json", "benchmark": folder / "bench.json"}
    return {
        name: (process, json.loads(written[name].read_text()) if name in written and written[name].exists() else None)
        for name, process in processes.items()
    }


def _example(runs):
    process, report = runs["example"]
    assert process.returncode == 0, f"{process.stdout}\n{process.stderr[-5000:]}"
    return report


def test_the_distributed_example_runs_on_loopback_with_one_command(runs):
    _example(runs)
    assert runs["example"][0].stdout.startswith("distributed_stateful: 1 ps + 2 workers on loopback")


def test_each_worker_ran_its_state_on_itself_and_the_weights_on_the_ps(runs):
    report = _example(runs)
    for task, worker in enumerate(report["workers"]):
        assert worker["task"] == task
        assert worker["state_device"] == f"/job:worker/task:{task}"
        assert worker["devices"]["state"] == [f"/job:worker/replica:0/task:{task}/device:CPU:0"]
        assert sorted(worker["devices"]["weights"]) == [
            "head/bias",
            "head/kernel",
            "rnn/lstm_cell/bias",
            "rnn/lstm_cell/kernel",
        ]
        assert set(worker["devices"]["weights"].values()) == {"/job:ps/replica:0/task:0/device:CPU:0"}


def test_each_worker_carries_its_own_streams_and_a_state_put_on_the_ps_mixes_them(runs):
    workers = _example(runs)["workers"]
    assert all(worker["kept_error"] < 1e-5 for worker in workers)  # chunks with keep == its one long run
    assert max(worker["state_on_ps_error"] for worker in workers) > 1e-2  # the pitfall, measured the same way


def test_training_on_the_cluster_lowers_every_workers_loss_on_shared_weights(runs):
    workers = _example(runs)["workers"]
    assert all(worker["last_pass_loss"] < 0.5 * worker["first_pass_loss"] for worker in workers)
    assert len({worker["weights_sum"] for worker in workers}) == 1


def test_a_worker_started_as_a_task_the_spec_lacks_exits_with_tensorflows_error_and_a_hint(runs):
    process, _ = runs["wrong_task"]
    assert process.returncode != 0
    assert (
        'InternalError: Task 2 was not defined in job "worker". The cluster spec has the jobs '
        "'ps' (1 task), 'worker' (2 tasks), so job_name 'worker' with task_index 2 is not one of its tasks"
        in process.stderr
    ), process.stderr[-3000:]


def test_the_placement_benchmark_times_state_on_the_worker_and_on_the_ps(runs):
    process, result = runs["benchmark"]
    assert process.returncode == 0, process.stderr[-3000:]
    (config,) = result["results"]
    assert config["placement"] == {
        "worker": ["/job:worker/replica:0/task:0/device:CPU:0"],
        "ps": ["/job:ps/replica:0/task:0/device:CPU:0"],
    }
    for kind in ("streaming", "training"):
        assert sorted(config[kind]) == ["dynamic_rnn, zero state", "keep, state on ps", "keep, state on worker"]
        assert config[kind]["dynamic_rnn, zero state"]["ratio"] == 1.0
    assert "| streaming, batch 4, hidden 16, 5 steps (state 0.5 KiB) | keep, state on ps |" in process.stdout


@pytest.mark.parametrize(
    "job_name, task_index, message",
    [
        ("wroker", 0, 'Job "wroker" was not defined in cluster. The cluster spec has the jobs '),
        ("worker", 2, 'Task 2 was not defined in job "worker". '),
        ("ps", -1, 'Task -1 was not defined in job "ps". '),
    ],
)
def test_a_task_outside_the_cluster_spec_gets_tensorflows_error_with_a_hint(job_name, task_index, message):
    spec = {"ps": ["127.0.0.1:1"], "worker": ["127.0.0.1:2", "127.0.0.1:3"]}
    with pytest.raises(tf.errors.InternalError) as raised:
        cluster.start_server(spec, job_name, task_index)
    assert message in raised.value.message
    assert (
        f"so job_name '{job_name}' with task_index {task_index} is not one of its tasks: start each process as "
        "one task of the spec"
    ) in raised.value.message


def test_a_port_another_process_has_gets_tensorflows_error_with_a_hint():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(tf.errors.UnknownError) as raised:
            cluster.start_server({"worker": [address]}, "worker", 0)
    assert raised.value.message.startswith("Could not start gRPC server. ")
    assert f"'worker' task 0 could not listen on the port of its address '{address}'" in raised.value.message


def test_an_address_without_a_port_gets_tensorflows_error_with_a_hint():
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"Could not parse port .* Every address in the cluster spec must be 'host:port'",
    ):
        cluster.start_server({"worker": ["localhost"]}, "worker", 0)


def test_waiting_for_tasks_that_are_not_there_times_out_naming_them():
    spec = cluster.loopback_cluster(num_ps=1, num_workers=1)
    start = time.monotonic()
    with pytest.raises(
        TimeoutError,
        match=rf"No answer within 0.5 s from 'ps' task 0 at {spec['ps'][0]}, 'worker' "
        rf"task 0 at {spec['worker'][0]}\. Check that each task is started",
    ):
        cluster.wait_for_cluster(spec, timeout_s=0.5)
    assert time.monotonic() - start < 5


def test_loopback_cluster_gives_distinct_ports_nobody_listens_on():
    spec = cluster.loopback_cluster(num_ps=2, num_workers=3)
    addresses = spec["ps"] + spec["worker"]
    assert len(spec["ps"]) == 2 and len(spec["worker"]) == 3 and len(set(addresses)) == 5
    for address in addresses:
        with socket.socket() as probe:
            probe.bind(("", int(address.rsplit(":", 1)[1])))  # free on every interface


def test_a_keyed_table_runs_on_the_worker_and_its_streams_continue_across_runs():
    # in-process ps and worker servers (they live until the test process ends); the table stays off the ps
    spec = cluster.loopback_cluster(num_ps=1, num_workers=1)
    cluster.start_server(spec, "ps", 0)
    worker = cluster.start_server(spec, "worker", 0)
    chunk = np.random.RandomState(3).uniform(-1, 1, (2, 3, 2)).astype(np.float32)
    with tf.Graph().as_default():
        setter = tf.compat.v1.train.replica_device_setter(cluster=spec, worker_device="/job:worker/task:0")
        with tf.compat.v1.device(setter):
            x = tf.compat.v1.placeholder(tf.float32, [None, None, 2])
            keys = tf.compat.v1.placeholder(tf.int64, [None])
            cell = tfstate.LSTMCell(3)
            krnn = tfstate.keyed_dynamic_rnn(cell, x, keys, capacity=4)
            whole, _ = tf.compat.v1.nn.dynamic_rnn(cell, tf.concat([x, x], 1), dtype=tf.float32, scope="rnn")
        with tf.compat.v1.Session(worker.target) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            krnn.state.initialize_if_needed(sess)
            trace = tf.compat.v1.RunMetadata()
            options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
            feed = {x: chunk, keys: [5, 9]}
            sess.run([krnn.outputs, krnn.keep], feed, options=options, run_metadata=trace)
            second, expected = sess.run([krnn.outputs, whole], feed)
    devices = {node.node_name: stats.device for stats in trace.step_stats.dev_stats for node in stats.node_stats}
    table_devices = {device for name, device in devices.items() if name.startswith(f"{krnn.state.name}/")}
    assert table_devices == {"/job:worker/replica:0/task:0/device:CPU:0"}
    np.testing.assert_allclose(second, expected[:, 3:], atol=1e-5)  # the second chunk continued the first


# Worker 0 of the test's cluster: keeps the first chunk of two streams into a keyed table on the ps, says so,
# and waits to be killed. Its graph is the test's own (`_shared_table_graph`), imported from this file.
FIRST_WORKER = """
import json, sys, time
import tensorflow as tf
sys.path.insert(0, sys.argv[2])
from test_cluster import STREAMS, _shared_table_graph
from tfstate import cluster

tf.compat.v1.disable_eager_execution()
spec = json.loads(sys.argv[1])
server = cluster.start_server(spec, "worker", 0)
x, keys, krnn, _ = _shared_table_graph(spec, 0)
config = tf.compat.v1.ConfigProto(device_filters=["/job:ps", "/job:worker/task:0"])
with tf.compat.v1.Session(server.target, config=config) as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    krnn.state.initialize_if_needed(sess)
    sess.run([krnn.outputs, krnn.keep], {x: STREAMS[:, :3], keys: [11, 12]})
    print("kept", flush=True)
    time.sleep(600)
"""
STREAMS = np.random.RandomState(5).uniform(-1, 1, (2, 6, 2)).astype(np.float32)


def _shared_table_graph(spec, task):
    """(x, keys, KeyedRNN, the same cell over a whole stream from zeros): a keyed table on the ps, weights too."""
    setter = tf.compat.v1.train.replica_device_setter(cluster=spec, worker_device=f"/job:worker/task:{task}")
    with tf.compat.v1.device(setter):
        x = tf.compat.v1.placeholder(tf.float32, [None, None, 2])
        keys = tf.compat.v1.placeholder(tf.int64, [None])
        cell = tfstate.LSTMCell(3)
        krnn = tfstate.keyed_dynamic_rnn(cell, x, keys, capacity=4, state_device="/job:ps/task:0")
        whole, _ = tf.compat.v1.nn.dynamic_rnn(cell, x, dtype=tf.float32, scope="rnn")
    return x, keys, krnn, whole


def test_streams_in_a_keyed_table_on_the_ps_continue_on_another_worker_after_theirs_is_killed(tmp_path):
    spec = cluster.loopback_cluster(num_ps=1, num_workers=2)
    cluster.start_server(spec, "ps", 0)  # in this process, like worker 1 (both live until the tests end)
    worker = cluster.start_server(spec, "worker", 1)
    script = tmp_path / "first_worker.py"
    script.write_text(FIRST_WORKER)
    path = os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": path}
    first = subprocess.Popen(
        [sys.executable, str(script), json.dumps(spec), str(REPO / "tests")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = first.stdout.readline()
        assert line == "kept\n", line + first.stderr.read()[-3000:]
    finally:
        first.kill()  # SIGKILL: worker 0 dies right after its keep
        first.wait(timeout=60)
    with tf.Graph().as_default():
        x, keys, krnn, whole = _shared_table_graph(spec, 1)
        config = tf.compat.v1.ConfigProto(device_filters=["/job:ps", "/job:worker/task:1"])  # not the dead one
        with tf.compat.v1.Session(worker.target, config=config) as sess:
            krnn.state.initialize_if_needed(sess)  # the ps holds it already: nothing is emptied
            continued, found = sess.run([krnn.outputs, krnn.lookup.found], {x: STREAMS[:, 3:], keys: [11, 12]})
            expected = sess.run(whole, {x: STREAMS})  # the weights worker 0 initialized on the ps
    assert found.tolist() == [True, True]
    np.testing.assert_allclose(continued, expected[:, 3:], atol=1e-5)  # equal to one uninterrupted run
