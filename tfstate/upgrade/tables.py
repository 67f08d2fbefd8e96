"""Where each TF1 name goes: the tables behind tfstate's upgrade rules, and how a name's new home is found.

tfstate_name("tf.contrib.rnn.LSTMCell")   -> "tfstate.rnn_cell.LSTMCell"   (LSTMCell in tfstate.rnn_cell.__all__)
tfstate_name("tf.nn.dynamic_rnn")         -> "tfstate.dynamic_rnn"
module_rename("tf.logging.info")          -> "tf.compat.v1.logging.info"   (every name of the module moves)
api_path("tensorflow.python.ops.rnn")     -> "tf.nn"                       (the TF1 API name of a module path)
"""

import importlib

# TF1 modules whose names tfstate provides: X converts when X is in the tfstate module's __all__.
MODULES = {
    "tf.contrib.rnn": "tfstate.rnn_cell",
    "tf.nn.rnn_cell": "tfstate.rnn_cell",
    "tf.compat.v1.nn.rnn_cell": "tfstate.rnn_cell",
    "tf.contrib.cudnn_rnn": "tfstate.cudnn_rnn",
    "tf.contrib.seq2seq": "tfstate.seq2seq",
    "tf.contrib.legacy_seq2seq": "tfstate.legacy_seq2seq",
    "tf.layers": "tfstate.layers",
    "tf.compat.v1.layers": "tfstate.layers",
    "tf.contrib.layers": "tfstate.layers",
}

# TF1 functions with a tfstate replacement (the same function, which also runs fused cells over whole chunks).
FUNCTIONS = {
    "tf.nn.dynamic_rnn": "tfstate.dynamic_rnn",
    "tf.compat.v1.nn.dynamic_rnn": "tfstate.dynamic_rnn",
    "tf.nn.bidirectional_dynamic_rnn": "tfstate.bidirectional_dynamic_rnn",
    "tf.compat.v1.nn.bidirectional_dynamic_rnn": "tfstate.bidirectional_dynamic_rnn",
}

# TF1 modules that live on, whole, under tf.compat.v1: every name under them moves with them.
WHOLE_MODULES = {
    "tf.logging": "tf.compat.v1.logging",
    "tf.flags": "tf.compat.v1.flags",
    "tf.app": "tf.compat.v1.app",
}

# TF1 modules used as a value (`rnn_cell = tf.nn.rnn_cell`): where the module itself goes.
VALUE_MODULES = {**MODULES, "tf.contrib.framework.nest": "tf.nest"}

# TF1 tf.contrib names that were aliases of core TF1 functions and classes, which TensorFlow's upgrader does not
# rename (the PTB tutorial's `tf.contrib.framework.get_or_create_global_step()`): their tf.compat.v1 homes.
CONTRIB_CORE_NAMES = {
    **{
        f"tf.contrib.framework.{name}": f"tf.compat.v1.train.{name}"
        for name in (
            "get_or_create_global_step",
            "get_global_step",
            "create_global_step",
            "assert_global_step",
            "list_variables",
            "init_from_checkpoint",
        )
    },
    **{
        f"tf.contrib.lookup.{name}": f"tf.compat.v1.lookup.{name}"
        for name in ("KeyValueTensorInitializer", "TextFileInitializer", "TextFileIndex")
    },
}

# TF1 summary names that TensorFlow's upgrader leaves as TF2 calls (which need a default writer and fail
# in a graph-mode program); their TF1 forms are in tf.compat.v1.summary.
SUMMARY_NAMES = (
    "scalar",
    "histogram",
    "image",
    "audio",
    "text",
    "tensor_summary",
    "merge",
    "merge_all",
    "FileWriter",
    "FileWriterCache",
    "Summary",
    "SummaryDescription",
    "Event",
    "SessionLog",
    "TaggedRunMetadata",
    "get_summary_description",
)

# TF1 implementation modules that programs import directly, and the TF1 API module that holds their names.
PYTHON_MODULES = {
    "tensorflow.python.ops.rnn": "tf.nn",
    "tensorflow.python.ops.rnn_cell": "tf.nn.rnn_cell",
    "tensorflow.python.ops.rnn_cell_impl": "tf.nn.rnn_cell",
    "tensorflow.python.layers.core": "tf.layers",
    "tensorflow.contrib.rnn.python.ops.rnn_cell": "tf.contrib.rnn",
    "tensorflow.contrib.rnn.python.ops.core_rnn_cell": "tf.contrib.rnn",
    "tensorflow.contrib.rnn.python.ops.rnn": "tf.contrib.rnn",
    "tensorflow.contrib.rnn.python.ops.lstm_ops": "tf.contrib.rnn",
    "tensorflow.contrib.rnn.python.ops.gru_ops": "tf.contrib.rnn",
    "tensorflow.contrib.rnn.python.ops.fused_rnn_cell": "tf.contrib.rnn",
    "tensorflow.contrib.seq2seq.python.ops.attention_wrapper": "tf.contrib.seq2seq",
    "tensorflow.contrib.seq2seq.python.ops.basic_decoder": "tf.contrib.seq2seq",
    "tensorflow.contrib.seq2seq.python.ops.beam_search_decoder": "tf.contrib.seq2seq",
    "tensorflow.contrib.seq2seq.python.ops.decoder": "tf.contrib.seq2seq",
    "tensorflow.contrib.seq2seq.python.ops.helper": "tf.contrib.seq2seq",
    "tensorflow.contrib.seq2seq.python.ops.loss": "tf.contrib.seq2seq",
    "tensorflow.contrib.legacy_seq2seq.python.ops.seq2seq": "tf.contrib.legacy_seq2seq",
}
_NOT_API = ("python", "examples", "core", "tools", "compiler", "lite")  # tensorflow.X that are no TF1 API names
REMOVED_PYTHON_MODULES = ("tensorflow.contrib", "tensorflow.examples")  # import paths gone from TensorFlow 2

# Calls whose presence means the script builds a graph and runs it in a session.
GRAPH_MODE_NAMES = {
    "Session",
    "InteractiveSession",
    "MonitoredSession",
    "MonitoredTrainingSession",
    "SingularMonitoredSession",
    "placeholder",
    "placeholder_with_default",
    "sparse_placeholder",
    "StatefulSession",
}
ALREADY_GRAPH_MODE = {"disable_eager_execution", "disable_v2_behavior"}


def in_module(name, module):
    return name == module or name.startswith(module + ".")


def public_names(module_name):
    """The `__all__` of a tfstate module, read when asked (so names other modules add later convert)."""
    return importlib.import_module(module_name).__all__


def tfstate_name(name):
    """The tfstate name that replaces the TF1 name `name`, or None when tfstate has none."""
    module, _, symbol = name.rpartition(".")
    if module in MODULES and symbol in public_names(MODULES[module]):
        return f"{MODULES[module]}.{symbol}"
    return FUNCTIONS.get(name)


def module_rename(name):
    """`name` under its module's tf.compat.v1 home when its whole module moved there (tf.logging, ...), else None."""
    for old, new in WHOLE_MODULES.items():
        if in_module(name, old):
            return new + name[len(old) :]
    return None


def api_path(python_path):
    """The TF1 API name (`tf.contrib.rnn.LSTMCell`) of an import path (`tensorflow.contrib.rnn.LSTMCell`), or None.

    Implementation modules that TF1 programs imported (`tensorflow.python.ops.rnn_cell`) map to the API module
    that held their names; other `tensorflow.python...` paths are no API names (they are left alone).
    """
    for module in sorted(PYTHON_MODULES, key=len, reverse=True):
        if in_module(python_path, module):
            return PYTHON_MODULES[module] + python_path[len(module) :]
    parts = python_path.split(".")
    if parts[0] != "tensorflow" or (len(parts) > 1 and parts[1] in _NOT_API):
        return None
    return ".".join(["tf"] + parts[1:])
