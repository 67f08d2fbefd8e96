"""Runs one framework's workloads in this process: `python -m tfstate.benchmarks.suite FRAMEWORK '<json>'`.

FRAMEWORK is `tf` (TF1 graph code and tfstate), `keras` (Keras 3) or `torch` (PyTorch). Every
process also times the TF1 baseline (and the torch process tfstate's fast path), alternating with
its own variants, so the ratios it reports compare runs made under the same conditions.
"""

import functools
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfstate.benchmarks import common  # noqa: E402

STREAM_BASELINE = "dynamic_rnn + LSTMCell, zero state"
GEN_BASELINE = "per-step session.run, feed_dict"
GEN_DEFAULT = "tfstate.generate (LSTMBlockCell)"
GEN_LOOP = "tfstate.generate (LSTMBlockCell, jit_compile=False: tf.while_loop)"
TRAIN_BASELINE = "dynamic_rnn + LSTMCell, SGD step + keep"
KEEP_RAW = "tfstate keep (state in variables)"
KEEP_SESSION = "tfstate StatefulSession.run (all-or-nothing keep)"
KERAS_STATEFUL = "Keras 3 LSTM(stateful=True)"
TORCH_LSTM = "PyTorch nn.LSTM, carrying (h, c)"
FAST_XLA = "tfstate fast path (LSTMBlockCell, XLA) + keep"
FAST_NATIVE = "tfstate fast path (LSTMBlockCell, compiled kernel) + keep"


class _Workloads:
    """Named `run_once` callables by table, and the TF sessions behind them (closed together)."""

    def __init__(self):
        self.stream, self.gen, self.train, self._sessions = {}, {}, {}, []

    def add(self, table, name, made):
        """Adds `made` = (run_once, session) to `table` under `name`."""
        table[name] = made[0]
        self._sessions.append(made[1])

    def add_fast_paths(self, config, inputs, result, table=None, make=None):
        """The fast path on XLA and, where it can be built here, on the compiled kernel (streaming by default)."""
        import tensorflow as tf

        from tfstate.benchmarks import tf_graph
        from tfstate import native
        table = self.stream if table is None else table
        make = make or (lambda **kwargs: tf_graph.stateful(config, inputs, **kwargs)[:2])
        self.add(table, FAST_XLA, make(fast=True, implementation="xla"))
        result["native"] = native.unsupported_reason(tf.float32) or "used"
        if result["native"] == "used":
            self.add(table, FAST_NATIVE, make(fast=True, implementation="native"))

    def close(self):
        for sess in self._sessions:
            sess.close()


def _streaming(config, settings, variants, baseline=STREAM_BASELINE):
    times = common.time_alternating(variants, settings)
    stats = {name: common.summarize(seconds) for name, seconds in times.items()}
    for name, entry in stats.items():
        entry["ratio"] = stats[baseline]["median_ms"] / entry["median_ms"]
    return stats


def tf_variants(config, settings, result):
    from tfstate.benchmarks import tf_graph
    inputs = common.random_inputs(config)
    work = _Workloads()
    work.add(work.stream, STREAM_BASELINE, tf_graph.dynamic_rnn_zero_state(config, inputs))
    work.add(work.stream, KEEP_RAW, tf_graph.stateful(config, inputs)[:2])
    work.add(work.stream, KEEP_SESSION, tf_graph.stateful_session(config, inputs))
    work.add(work.stream, "feed_dict round trip", tf_graph.feed_dict_round_trip(config, inputs))
    work.add_fast_paths(config, inputs, result)
    result["streaming"] = _streaming(config, settings, work.stream)
    work.add(work.gen, GEN_BASELINE, tf_graph.generate_feed_loop(config))
    work.add(work.gen, "per-step session.run, state in variables", tf_graph.generate_step_variables(config))
    work.add(work.gen, "tfstate.generate (LSTMCell)", tf_graph.generate_in_graph(config))
    work.add(work.gen, GEN_DEFAULT, tf_graph.generate_in_graph(config, fast=True))
    work.add(work.gen, GEN_LOOP, tf_graph.generate_in_graph(config, fast=True, jit_compile=False))
    result["generation"] = _streaming(config, settings, work.gen, baseline=GEN_BASELINE)
    train = functools.partial(tf_graph.training_step, config, inputs)
    work.add(work.train, TRAIN_BASELINE, train())
    work.add_fast_paths(config, inputs, result, work.train, train)
    result["training"] = _streaming(config, settings, work.train, baseline=TRAIN_BASELINE)
    result["op_count"] = tf_graph.op_count_check(config, inputs, repeats=settings.rounds * 10)
    work.close()


def keras_variants(config, settings, result):
    import numpy as np
    import tensorflow as tf
    import keras

    from tfstate.benchmarks import tf_graph
    inputs = common.random_inputs(config)
    baseline, sess = tf_graph.dynamic_rnn_zero_state(config, inputs)
    layers = [keras.Input(batch_shape=(config.batch, config.steps, config.input))]
    layers += [keras.layers.LSTM(config.hidden, return_sequences=True, stateful=True) for _ in range(config.layers)]
    model = keras.Sequential(layers)
    call = tf.function(lambda x: model(x, training=False))
    x = tf.constant(inputs)
    stream = {STREAM_BASELINE: baseline, KERAS_STATEFUL: lambda: np.asarray(call(x))}
    result["streaming"] = _streaming(config, settings, stream)
    result["keras"] = keras.__version__
    sess.close()


def torch_variants(config, settings, result):
    import torch

    from tfstate.benchmarks import tf_graph
    inputs = common.random_inputs(config)
    work = _Workloads()
    work.add(work.stream, STREAM_BASELINE, tf_graph.dynamic_rnn_zero_state(config, inputs))
    work.add_fast_paths(config, inputs, result)
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(config.input, config.hidden, num_layers=config.layers, batch_first=True).eval()
    x = torch.from_numpy(inputs)
    carried = [None]

    def torch_chunk():
        with torch.no_grad():
            outputs, carried[0] = lstm(x, carried[0])
        return outputs.numpy()

    work.stream[TORCH_LSTM] = torch_chunk
    result["streaming"] = _streaming(config, settings, work.stream)

    work.add(work.gen, GEN_BASELINE, tf_graph.generate_feed_loop(config))
    work.add(work.gen, GEN_DEFAULT, tf_graph.generate_in_graph(config, fast=True))
    work.add(work.gen, GEN_LOOP, tf_graph.generate_in_graph(config, fast=True, jit_compile=False))
    cells = [torch.nn.LSTMCell(config.input if k == 0 else config.hidden, config.hidden) for k in range(config.layers)]
    to_input = torch.nn.Linear(config.hidden, config.input)
    x0 = torch.from_numpy(common.random_inputs(config)[:, 0])

    def torch_generate():
        with torch.no_grad():
            current, states = x0, [None] * config.layers
            for _ in range(config.gen_steps):
                layer_input = current
                for k, cell in enumerate(cells):
                    states[k] = cell(layer_input, states[k])
                    layer_input = states[k][0]
                current = torch.tanh(to_input(layer_input))

    work.gen["PyTorch per-step LSTMCell loop"] = torch_generate
    result["generation"] = _streaming(config, settings, work.gen, baseline=GEN_BASELINE)
    result["torch"] = {"version": torch.__version__, "threads": torch.get_num_threads(),
                       "mkldnn": torch.backends.mkldnn.is_available()}
    work.close()


def main(argv):
    framework = argv[1]
    configs, settings, output = common.read_args(argv[1:])
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    run = {"tf": tf_variants, "keras": keras_variants, "torch": torch_variants}[framework]
    report = {"framework": framework, "tensorflow": tf.__version__, "configs": []}
    if framework == "tf":
        from tfstate.benchmarks import tf_graph
        report["gemm_flops"] = tf_graph.gemm_rate()
        report["threads"] = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                             "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    for config in configs:
        result = {"config": config.__dict__}
        run(config, settings, result)
        report["configs"].append(result)
    common.write_result(output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
