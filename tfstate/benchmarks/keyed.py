"""Keyed state against its targets, as ratios in one process: `python -m tfstate.benchmarks.keyed [--quick] [--json F]`.

memory     streams of a 1-layer LSTM(256) resident in a KeyedState: process memory / raw state bytes
overhead   a chunk (batch 32, 50 steps) through keyed lookup + keep vs the same chunk with RNNState keep
lookups    the keyed machinery alone (claim, read, keep; no RNN) on a full table: keys per second
serving    one step for 32 streams through the exported SavedModel: latency, and the throughput of
           2 client threads on disjoint keys over 1 thread; the TF1 recipe (the client carries
           each stream's state through a stateless SavedModel) timed alongside
torch      PyTorch's per-step latency for the same model, in its own process (skipped without torch)
"""

import argparse
import dataclasses
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from tfstate.benchmarks import common


@dataclasses.dataclass
class KeyedConfig:
    streams: int = 100_000  # resident streams for the memory and lookup measurements
    batch: int = 32
    input: int = 64
    hidden: int = 256
    steps: int = 50  # chunk length of the overhead measurement
    client_steps: int = 200  # steps each client thread serves per throughput round
    rounds: int = 9  # throughput rounds (each times 1 thread, then 2)


QUICK = (
    KeyedConfig(streams=2000, batch=4, input=8, hidden=16, steps=5, client_steps=10, rounds=2),
    common.QUICK_SETTINGS,
)
FULL = (KeyedConfig(), common.FULL_SETTINGS)
FILL_BLOCK = 1000  # streams kept per run while filling a table


def _rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmRSS in /proc/self/status")


def _session(graph):
    import tensorflow as tf

    with graph.as_default():
        sess = tf.compat.v1.Session(graph=graph)
        sess.run([tf.compat.v1.global_variables_initializer(), tf.compat.v1.local_variables_initializer()])
    return sess


class _Table:
    """A KeyedState of LSTM(hidden) streams, a keep op fed by placeholders to fill it, and a session."""

    def __init__(self, config, rng):
        import tensorflow as tf

        import tfstate

        self.config, self.graph = config, tf.Graph()
        with self.graph.as_default():
            self.table = tfstate.KeyedState(tfstate.LSTMCell(config.hidden).state_size, config.streams)
            self.keys = tf.compat.v1.placeholder(tf.int64, [None])
            self.given = tfstate.LSTMStateTuple(
                *[tf.compat.v1.placeholder(tf.float32, [None, config.hidden]) for _ in "ch"]
            )
            self.fill_op = self.table.lookup(self.keys).keep(self.given)
        self.sess = _session(self.graph)
        self.rows = rng.uniform(-1, 1, (min(FILL_BLOCK, config.streams), config.hidden)).astype(np.float32)
        self.fill(len(self.rows))  # warms up the allocator and the kernels
        self.sess.run(self.table.initializer)

    def fill(self, streams):
        block = len(self.rows)
        for start in range(0, streams, block):
            self.sess.run(
                self.fill_op,
                {self.keys: np.arange(start, start + block), self.given.c: self.rows, self.given.h: self.rows},
            )


def memory(config, rng):
    """Process memory taken by `streams` resident streams, over their raw state bytes (c and h, float32)."""
    table = _Table(config, rng)
    before = _rss_bytes()
    table.fill(config.streams)
    grown = _rss_bytes() - before
    resident = int(table.sess.run(table.table.size))
    table.sess.close()
    raw = resident * 2 * config.hidden * 4
    return {"streams": resident, "raw_mb": raw / 2**20, "rss_growth_mb": grown / 2**20, "ratio": grown / raw}


def lookups(config, settings, rng):
    """Keys per second through claim + read + keep (no RNN) of `batch` and 32 x `batch` keys of a full table."""
    import tensorflow as tf

    table = _Table(config, rng)
    with table.graph.as_default():
        keys = tf.compat.v1.placeholder(tf.int64, [None])
        lookup = table.table.lookup(keys)
        step = lookup.keep(tf.nest.map_structure(lambda part: part + 1, lookup.initial_state))
    table.fill(config.streams)
    variants = {}
    for batch in (config.batch, 32 * config.batch):
        chosen = [rng.choice(config.streams, batch, replace=False) for _ in range(16)]
        turns = iter(range(10**9))
        variants[f"{batch} keys"] = lambda chosen=chosen, turns=turns: table.sess.run(
            step, {keys: chosen[next(turns) % 16]}
        )
    times = common.time_alternating(variants, settings)
    table.sess.close()
    return {name: common.summarize(seconds, work_per_run=int(name.split()[0])) for name, seconds in times.items()}


def _cell(config, fast):
    import tfstate
    from tfstate.fused import LSTMBlockCell

    return LSTMBlockCell(config.hidden) if fast else tfstate.LSTMCell(config.hidden)


def _machinery(config, keyed):
    """`run_once` of the state machinery alone (no RNN): RNNState read + keep, or keyed claim + read + keep."""
    import tensorflow as tf

    import tfstate

    size = tfstate.LSTMCell(config.hidden).state_size
    graph = tf.Graph()
    with graph.as_default():
        if keyed:
            keys = tf.compat.v1.placeholder(tf.int64, [config.batch])
            carried = tfstate.KeyedState(size, config.streams).lookup(keys)
        else:
            carried = tfstate.RNNState(size, config.batch)
        keep = carried.keep(tf.nest.map_structure(lambda part: part + 1, carried.initial_state))
    sess = _session(graph)
    if keyed:
        sess.run(carried.state.initializer)
        ids = np.arange(config.batch)
        return (lambda: sess.run(keep, {keys: ids})), sess
    return (lambda: sess.run(keep)), sess


def overhead(config, settings, rng):
    """A chunk with keyed lookup + keep vs RNNState keep (LSTMCell and the fused fast path), and each machinery alone.

    The chunk ratios carry the machine's noise; the machinery alone (same batch, no RNN) gives
    the extra time per run with less of it, reported as a share of the RNNState chunk.
    """
    import tensorflow as tf

    import tfstate

    chunk = rng.uniform(-1, 1, (config.batch, config.steps, config.input)).astype(np.float32)
    ids = np.arange(config.batch)
    variants, sessions = {}, []
    for fast in (False, True):
        label = "LSTMBlockCell fast path" if fast else "LSTMCell"
        graph = tf.Graph()
        with graph.as_default():
            rnn = tfstate.stateful_dynamic_rnn(_cell(config, fast), tf.constant(chunk), batch_size=config.batch)
        sess = _session(graph)
        variants[f"{label}, RNNState keep"] = lambda sess=sess, rnn=rnn: sess.run((rnn.outputs, rnn.keep))
        sessions.append(sess)
        graph = tf.Graph()
        with graph.as_default():
            keys = tf.compat.v1.placeholder(tf.int64, [config.batch])
            krnn = tfstate.keyed_dynamic_rnn(_cell(config, fast), tf.constant(chunk), keys, capacity=config.streams)
        sess = _session(graph)
        sess.run(krnn.state.initializer)
        variants[f"{label}, keyed keep"] = lambda sess=sess, krnn=krnn, keys=keys: sess.run(
            (krnn.outputs, krnn.keep), {keys: ids}
        )
        sessions.append(sess)
    for keyed in (False, True):
        run_once, sess = _machinery(config, keyed)
        variants["keyed claim + read + keep alone" if keyed else "RNNState read + keep alone"] = run_once
        sessions.append(sess)
    times = common.time_alternating(variants, settings)
    for sess in sessions:
        sess.close()
    stats = {name: common.summarize(seconds) for name, seconds in times.items()}
    extra_ms = stats["keyed claim + read + keep alone"]["median_ms"] - stats["RNNState read + keep alone"]["median_ms"]
    for name, entry in stats.items():
        if "keyed keep" in name:
            baseline = stats[name.replace("keyed keep", "RNNState keep")]
            entry["ratio_to_rnnstate"] = entry["median_ms"] / baseline["median_ms"]
            entry["min_ratio_to_rnnstate"] = entry["min_ms"] / baseline["min_ms"]
            entry["machinery_share"] = extra_ms / baseline["median_ms"]
    stats["machinery_extra_ms"] = extra_ms
    return stats


def _export(config, folder, fast):
    """Exports a keyed LSTM (one step per request, outputs = h) as a SavedModel; returns its folder."""
    import tensorflow as tf

    import tfstate
    from tfstate.fused import LSTMBlockCell

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, None, config.input], name="inputs")
        keys = tf.compat.v1.placeholder(tf.int64, [None], name="keys")
        cell = LSTMBlockCell(config.hidden, implementation="block") if fast else tfstate.LSTMCell(config.hidden)
        krnn = tfstate.keyed_dynamic_rnn(cell, x, keys, capacity=config.streams)
    sess = _session(graph)
    path = os.path.join(folder, "block" if fast else "plain")
    with graph.as_default():
        tfstate.serving.export_saved_model(sess, path, krnn, inputs={"inputs": x}, outputs={"outputs": krnn.outputs})
    sess.close()
    return path


def _export_stateless(config, folder):
    """The TF1 recipe's model: the same LSTM, its state a signature input and output (the client keeps it)."""
    import tensorflow as tf

    import tfstate

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, None, config.input], name="inputs")
        state = tfstate.LSTMStateTuple(
            *[tf.compat.v1.placeholder(tf.float32, [None, config.hidden], name=part) for part in ("c", "h")]
        )
        outputs, final = tf.compat.v1.nn.dynamic_rnn(tfstate.LSTMCell(config.hidden), x, initial_state=state)
    sess = _session(graph)
    path = os.path.join(folder, "stateless")
    with graph.as_default():
        tf.compat.v1.saved_model.simple_save(
            sess,
            path,
            inputs={"inputs": x, "c": state.c, "h": state.h},
            outputs={"outputs": outputs, "c_out": final.c, "h_out": final.h},
        )
    sess.close()
    return path


class _Served:
    """A SavedModel loaded with `tf.compat.v1.saved_model.loader.load`; `step(keys, inputs)` serves one request.

    A keyed model keeps the streams' state itself; for a stateless one (`client_carried`) the
    client keeps each stream's state in a dict and passes it in and out, as TF1 servers did.
    """

    def __init__(self, path, client_carried=False):
        import tensorflow as tf

        self.graph, self.client_carried = tf.Graph(), client_carried
        self.sess = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            signature = tf.compat.v1.saved_model.loader.load(self.sess, ["serve"], path).signature_def
        signature = signature["serving_default" if client_carried else "step"]
        self.inputs = {name: self.graph.get_tensor_by_name(info.name) for name, info in signature.inputs.items()}
        self.outputs = {name: self.graph.get_tensor_by_name(info.name) for name, info in signature.outputs.items()}
        self.states = {}  # client_carried: stream -> (c, h)
        self.lock = threading.Lock()

    def step(self, keys, inputs):
        if not self.client_carried:
            return self.sess.run(
                self.outputs["outputs"],
                {
                    self.inputs["keys"]: keys,
                    self.inputs["inputs"]: inputs,
                    self.inputs["start"]: np.zeros(len(keys), bool),
                },
            )
        width = self.inputs["c"].shape[-1]
        with self.lock:
            carried = [self.states.get(key, (np.zeros(width, np.float32),) * 2) for key in keys]
        feed = {
            self.inputs["inputs"]: inputs,
            self.inputs["c"]: np.stack([c for c, _ in carried]),
            self.inputs["h"]: np.stack([h for _, h in carried]),
        }
        outputs, c, h = self.sess.run([self.outputs[name] for name in ("outputs", "c_out", "h_out")], feed)
        with self.lock:
            self.states.update((key, (c[row], h[row])) for row, key in enumerate(keys))
        return outputs


class _InProcess:
    """The keyed `LSTMCell` step built in this process (no SavedModel): `step(keys, inputs)` runs and keeps."""

    def __init__(self, config):
        import tensorflow as tf

        import tfstate

        self.graph = tf.Graph()
        with self.graph.as_default():
            self.x = tf.compat.v1.placeholder(tf.float32, [None, None, config.input])
            self.keys = tf.compat.v1.placeholder(tf.int64, [None])
            krnn = tfstate.keyed_dynamic_rnn(
                tfstate.LSTMCell(config.hidden), self.x, self.keys, capacity=config.streams
            )
            self.fetches = (krnn.outputs, krnn.keep)
        self.sess = _session(self.graph)
        self.sess.run(krnn.state.initializer)

    def step(self, keys, inputs):
        return self.sess.run(self.fetches, {self.keys: keys, self.x: inputs})[0]


def _throughput(served, config, threads, rng):
    """Streams served per second by `threads` clients, each stepping its own `batch` streams."""
    inputs = rng.uniform(-1, 1, (config.batch, 1, config.input)).astype(np.float32)

    def client(index):
        keys = np.arange(config.batch) + index * config.batch  # disjoint keys
        for _ in range(config.client_steps):
            served.step(keys, inputs)

    workers = [threading.Thread(target=client, args=(index,)) for index in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * config.client_steps * config.batch / (time.perf_counter() - start)


def serving(config, settings, rng):
    """Step latency (32 streams, one step) through the SavedModel, and 2-thread / 1-thread throughput."""
    result = {}
    with tempfile.TemporaryDirectory() as folder:
        served = {
            "keyed LSTMCell": _Served(_export(config, folder, fast=False)),
            "keyed LSTMBlockCell (BlockLSTM)": _Served(_export(config, folder, fast=True)),
            "TF1 recipe: LSTMCell, state through the signature": _Served(
                _export_stateless(config, folder), client_carried=True
            ),
        }
    inputs = rng.uniform(-1, 1, (config.batch, 1, config.input)).astype(np.float32)
    ids = np.arange(config.batch)
    times = common.time_alternating(
        {name: (lambda model=model: model.step(ids, inputs)) for name, model in served.items()}, settings
    )
    result["latency"] = {name: common.summarize(seconds) for name, seconds in times.items()}
    served["keyed LSTMCell, in-process graph (no SavedModel)"] = _InProcess(config)
    for name, model in served.items():
        _throughput(model, config, 2, rng)  # warm-up
        rates = {1: [], 2: []}
        for _ in range(config.rounds):
            for threads in (1, 2):
                time.sleep(settings.settle_s)
                rates[threads].append(_throughput(model, config, threads, rng))
        ratios = [two / one for one, two in zip(rates[1], rates[2])]
        result.setdefault("throughput", {})[name] = {
            "streams_per_s_1_thread": statistics.median(rates[1]),
            "streams_per_s_2_threads": statistics.median(rates[2]),
            "ratio": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
        }
        model.sess.close()
    return result


def torch_step(config, settings):
    """PyTorch's one-step latency for `batch` streams of the same LSTM: (h, c) carried, or per stream in a dict."""
    import torch

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(config.input, config.hidden, batch_first=True).eval()
    inputs = np.random.RandomState(0).uniform(-1, 1, (config.batch, 1, config.input)).astype(np.float32)
    inputs = torch.from_numpy(inputs)
    state = [torch.zeros(1, config.batch, config.hidden), torch.zeros(1, config.batch, config.hidden)]
    streams = {key: (torch.zeros(config.hidden), torch.zeros(config.hidden)) for key in range(config.batch)}

    def carried():
        with torch.no_grad():
            _, (h, c) = lstm(inputs, tuple(state))
        state[:] = [h, c]

    def keyed():  # a server's per-stream state: gathered from a dict, stepped, scattered back
        with torch.no_grad():
            h = torch.stack([streams[key][0] for key in range(config.batch)])[None]
            c = torch.stack([streams[key][1] for key in range(config.batch)])[None]
            _, (h, c) = lstm(inputs, (h, c))
            for key in range(config.batch):
                streams[key] = (h[0, key], c[0, key])

    default_threads = torch.get_num_threads()
    latency = {}
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        times = common.time_alternating(
            {
                f"PyTorch nn.LSTM, (h, c) carried, {threads} thread(s)": carried,
                f"PyTorch nn.LSTM, per-stream dict, {threads} thread(s)": keyed,
            },
            settings,
        )
        latency.update({name: common.summarize(seconds) for name, seconds in times.items()})
    return {"torch": torch.__version__, "default_threads": default_threads, "latency": latency}


def _torch_in_subprocess(quick):
    if importlib.util.find_spec("torch") is None:
        return {"skipped": "PyTorch is not installed (pip install 'tfstate[bench]')"}
    command = [sys.executable, "-m", "tfstate.benchmarks.keyed", "--torch-step"] + (["--quick"] if quick else [])
    process = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if process.returncode != 0:
        return {"skipped": f"the PyTorch process failed: {process.stderr[-500:]}"}
    return json.loads(process.stdout.strip().splitlines()[-1])


def run(quick=False):
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    config, settings = QUICK if quick else FULL
    rng = np.random.RandomState(0)
    started = time.time()
    result = {
        "machine": common.machine_info(),
        "config": dataclasses.asdict(config),
        "load_average_before": os.getloadavg(),
    }
    result["memory"] = memory(config, rng)
    result["overhead"] = overhead(config, settings, rng)
    result["lookups"] = lookups(config, settings, rng)
    result["serving"] = serving(config, settings, rng)
    result["torch"] = _torch_in_subprocess(quick)
    result["load_average_after"] = os.getloadavg()
    result["seconds"] = time.time() - started
    return result


def summary(result):
    """The targets, one line each."""
    lines = [
        f"memory: {result['memory']['streams']} streams, {result['memory']['rss_growth_mb']:.1f} MiB for "
        f"{result['memory']['raw_mb']:.1f} MiB of state: {result['memory']['ratio']:.3f}x (target <= 1.5x)"
    ]
    overhead = result["overhead"]
    for name, entry in overhead.items():
        if "keyed keep" in name:
            by_medians, by_minima = (100 * (entry[key] - 1) for key in ("ratio_to_rnnstate", "min_ratio_to_rnnstate"))
            lines.append(
                f"overhead: {name}: {entry['median_ms']:.2f} ms, {by_medians:+.1f}% vs RNNState keep by "
                f"medians, {by_minima:+.1f}% by minima; "
                f"the machinery alone adds {overhead['machinery_extra_ms']:.3f} ms = "
                f"{100 * entry['machinery_share']:.1f}% of the chunk (target <= 5%)"
            )
    for name, entry in result["lookups"].items():
        lines.append(f"lookups: {name} per run: {entry['per_s']:,.0f} keys/s ({entry['median_ms']:.3f} ms per run)")
    for name, entry in result["serving"]["latency"].items():
        lines.append(f"serving latency: {name}: {entry['median_ms']:.3f} ms (min {entry['min_ms']:.3f})")
    for name, entry in result["serving"]["throughput"].items():
        lines.append(
            f"serving throughput: {name}: 2 threads / 1 thread = {entry['ratio']:.2f}x "
            f"(range {entry['ratio_min']:.2f}-{entry['ratio_max']:.2f}; target >= 1.6x)"
        )
    torch = result["torch"]
    if "skipped" in torch:
        lines.append(f"torch: skipped: {torch['skipped']}")
    else:
        for name, entry in torch["latency"].items():
            lines.append(f"torch latency: {name}: {entry['median_ms']:.3f} ms (min {entry['min_ms']:.3f})")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats: checks the harness works")
    parser.add_argument("--json", dest="json_path", help="write the results here as JSON")
    parser.add_argument("--torch-step", action="store_true", help=argparse.SUPPRESS)  # the PyTorch subprocess
    args = parser.parse_args(argv)
    if args.torch_step:
        config, settings = QUICK if args.quick else FULL
        print(json.dumps(torch_step(config, settings)))
        return 0
    result = run(args.quick)
    if args.json_path:
        common.write_result(args.json_path, result)
    print(summary(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
