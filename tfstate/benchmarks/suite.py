"""Runs one framework's workloads in this process: `python -m tfstate.benchmarks.suite FRAMEWORK '<json>'`.

FRAMEWORK is `tf` (TF1 graph code and tfstate), `keras` (Keras 3) or `torch` (PyTorch). Every
process also times the TF1 baseline (and the torch process tfstate's fast path), alternating with
its own variants, so the ratios it reports compare runs made under the same conditions.
"""

import functools
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfstate.benchmarks import common

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
TORCH_LSTM_TRAIN = "PyTorch nn.LSTM, SGD step, carrying (h, c)"
GRU_STREAM_BASELINE = "dynamic_rnn + GRUCell, zero state"
GRU_TRAIN_BASELINE = "dynamic_rnn + GRUCell, SGD step + keep"
GRU_XLA = "tfstate fast path (GRUBlockCellV2, XLA) + keep"
GRU_NATIVE = "tfstate fast path (GRUBlockCellV2, compiled kernel) + keep"
TORCH_GRU = "PyTorch nn.GRU, carrying h"
TORCH_GRU_TRAIN = "PyTorch nn.GRU, SGD step, carrying h"


class _Workloads:
    """Named `run_once` callables by table, and the TF sessions behind them (closed together)."""

    def __init__(self):
        self.stream, self.gen, self.train, self._sessions = {}, {}, {}, []

    def add(self, table, name, made):
        """Adds `made` = (run_once, session) to `table` under `name`."""
        table[name] = made[0]
        self._sessions.append(made[1])

    def add_fast_paths(self, config, inputs, result, table=None, make=None, names=(FAST_XLA, FAST_NATIVE)):
        """The fast path on XLA and, where it can be built here, on the compiled kernel (streaming by default)."""
        import tensorflow as tf

        from tfstate import native
        from tfstate.benchmarks import tf_graph

        table = self.stream if table is None else table
        make = make or (lambda **kwargs: tf_graph.stateful(config, inputs, **kwargs)[:2])
        self.add(table, names[0], make(fast=True, implementation="xla"))
        result["native"] = native.unsupported_reason(tf.float32) or "used"
        if result["native"] == "used":
            self.add(table, names[1], make(fast=True, implementation="native"))

    def close(self):
        for sess in self._sessions:
            sess.close()


def _streaming(config, settings, variants, baseline=STREAM_BASELINE):
    times = common.time_alternating(variants, settings)
    stats = {name: common.summarize(seconds) for name, seconds in times.items()}
    for entry in stats.values():
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
    tf_gru_variants(config, settings, result)


def tf_gru_variants(config, settings, result):
    """The GRU tables of the tf process: streaming and training, TF1's stepped GRUCell as the baseline."""
    inputs = common.random_inputs(config)
    work = _Workloads()
    _add_gru_rows(work, config, inputs)
    result["gru_streaming"] = _streaming(config, settings, work.stream, baseline=GRU_STREAM_BASELINE)
    result["gru_training"] = _streaming(config, settings, work.train, baseline=GRU_TRAIN_BASELINE)
    work.close()


def _add_gru_rows(work, config, inputs):
    """TF1's stepped GRUCell and the GRU fast paths (`GRUBlockCellV2`), streaming and training."""
    from tfstate.benchmarks import tf_graph

    work.add(work.stream, GRU_STREAM_BASELINE, tf_graph.dynamic_rnn_zero_state(config, inputs, gru=True))
    stream = lambda **kwargs: tf_graph.stateful(config, inputs, gru=True, **kwargs)[:2]
    work.add_fast_paths(config, inputs, {}, work.stream, stream, names=(GRU_XLA, GRU_NATIVE))
    train = functools.partial(tf_graph.training_step, config, inputs, gru=True)
    work.add(work.train, GRU_TRAIN_BASELINE, train())
    work.add_fast_paths(config, inputs, {}, work.train, train, names=(GRU_XLA, GRU_NATIVE))


def keras_variants(config, settings, result):
    import keras
    import numpy as np
    import tensorflow as tf

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
    result["torch"] = {
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
    }
    work.close()
    torch_training(config, settings, result)
    torch_gru(config, settings, result)


def _torch_sgd_step(module, inputs, carried):
    """One SGD step of `module` (nn.LSTM / nn.GRU) on `inputs`, carrying its state detached: what TF's rows run."""
    import torch

    optimizer = torch.optim.SGD(module.parameters(), lr=1e-3)
    x = torch.from_numpy(inputs)

    def step():
        optimizer.zero_grad()
        outputs, state = module(x, carried[0])
        torch.mean(torch.square(outputs)).backward()
        optimizer.step()
        carried[0] = tuple(part.detach() for part in state) if isinstance(state, tuple) else state.detach()

    return step


def torch_training(config, settings, result):
    """The training table of the torch process: TF1's SGD step, tfstate's fast paths and PyTorch's nn.LSTM step."""
    import torch

    from tfstate.benchmarks import tf_graph

    inputs = common.random_inputs(config)
    work = _Workloads()
    train = functools.partial(tf_graph.training_step, config, inputs)
    work.add(work.train, TRAIN_BASELINE, train())
    work.add_fast_paths(config, inputs, {}, work.train, train)
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(config.input, config.hidden, num_layers=config.layers, batch_first=True)
    work.train[TORCH_LSTM_TRAIN] = _torch_sgd_step(lstm, inputs, [None])
    result["training"] = _streaming(config, settings, work.train, baseline=TRAIN_BASELINE)
    work.close()


def torch_gru(config, settings, result):
    """The GRU tables of the torch process: streaming and training against PyTorch's nn.GRU."""
    import torch

    inputs = common.random_inputs(config)
    work = _Workloads()
    _add_gru_rows(work, config, inputs)
    torch.manual_seed(0)
    gru = torch.nn.GRU(config.input, config.hidden, num_layers=config.layers, batch_first=True).eval()
    x, carried = torch.from_numpy(inputs), [None]

    def torch_chunk():
        with torch.no_grad():
            outputs, carried[0] = gru(x, carried[0])
        return outputs.numpy()

    work.stream[TORCH_GRU] = torch_chunk
    result["gru_streaming"] = _streaming(config, settings, work.stream, baseline=GRU_STREAM_BASELINE)
    trained = torch.nn.GRU(config.input, config.hidden, num_layers=config.layers, batch_first=True)
    work.train[TORCH_GRU_TRAIN] = _torch_sgd_step(trained, inputs, [None])
    result["gru_training"] = _streaming(config, settings, work.train, baseline=GRU_TRAIN_BASELINE)
    work.close()


def _native_facts():
    """Which compiled-kernel variant this process runs (or why none), and the TFSTATE_* variables it saw."""
    import tensorflow as tf

    from tfstate import native

    reason = native.unsupported_reason(tf.float32)
    return {
        "variant": None if reason else native.variant(),
        "variants": list(native.variants()),
        "not_used": reason,
        "env": {key: value for key, value in sorted(os.environ.items()) if key.startswith("TFSTATE_")},
    }


def main(argv):
    framework = argv[1]
    configs, settings, output = common.read_args(argv[1:])
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    run = {"tf": tf_variants, "keras": keras_variants, "torch": torch_variants}[framework]
    report = {"framework": framework, "tensorflow": tf.__version__, "configs": []}
    report["native"] = _native_facts()
    if framework == "tf":
        from tfstate.benchmarks import tf_graph

        report["gemm_flops"] = tf_graph.gemm_rate()
        report["threads"] = {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        }
    for config in configs:
        result = {"config": config.__dict__}
        run(config, settings, result)
        report["configs"].append(result)
    common.write_result(output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
