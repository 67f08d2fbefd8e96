"""Why a TF1 name left in an upgraded program cannot run on current TensorFlow, and what to use instead.

why_not_converted("tf.contrib.layers.flatten")  -> "tf.contrib was removed in TensorFlow 2 ...; use tf.reshape(...)"
why_not_converted("tf.nn.softmax")              -> None   (it runs)
"""

import functools
import types

import tensorflow as tf
from tensorflow.tools.compatibility import module_deprecations_v2

from tfstate.upgrade.tables import MODULES, api_path, in_module, public_names

_NORM = "tf.nn.moments and tf.nn.batch_normalization with scale/offset variables from tf.compat.v1.get_variable"
_KERAS2 = "needs Keras 2, which TensorFlow 2.16+ no longer loads"
_IDS = "tf.range(tf.size(vocabulary, out_type=tf.int64))"
_LINE_NUMBER, _WHOLE_LINE = "tf.lookup.TextFileIndex.LINE_NUMBER", "tf.lookup.TextFileIndex.WHOLE_LINE"
_OOV = "tf.lookup.StaticVocabularyTable where num_oov_buckets was given"
# What to write instead of TF1 names that nothing on current TensorFlow replaces one for one.
REPLACEMENTS = {
    "flatten": "tf.reshape(x, [tf.shape(x)[0], -1])",
    "linear": "tfstate.layers.fully_connected(x, num_outputs, activation_fn=None) (TF1's linear was exactly that)",
    "dropout": "tf.nn.dropout(x, rate=...) (under tf.cond(training, ...) where the layer took `training`)",
    "conv1d": "tf.nn.conv1d with a kernel from tf.compat.v1.get_variable",
    "conv2d": "tf.nn.conv2d with a kernel from tf.compat.v1.get_variable",
    "max_pooling2d": "tf.nn.max_pool2d",
    "batch_normalization": _NORM,
    "batch_norm": _NORM,
    "layer_norm": _NORM + " (moments over the last axis)",
    "optimize_loss": (
        "an optimizer from tf.compat.v1.train (e.g. AdamOptimizer(rate).minimize(loss)), clipping "
        "with tf.clip_by_global_norm where clip_gradients was given"
    ),
    "HParams": "a plain object (types.SimpleNamespace, a dict, or argparse) for the hyperparameters",
    "is_sequence": "tf.nest.is_nested",
    "HashTable": "tf.lookup.StaticHashTable(initializer, default_value)",
    "index_table_from_tensor": (
        f"tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(vocabulary, {_IDS}), default_value=-1) ({_OOV})"
    ),
    "index_table_from_file": (
        f"tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(path, tf.string, {_WHOLE_LINE}, tf.int64, "
        f"{_LINE_NUMBER}), default_value=-1) ({_OOV})"
    ),
    "index_to_string_table_from_tensor": (
        f"tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer({_IDS}, vocabulary), default_value='UNK')"
    ),
    "index_to_string_table_from_file": (
        f"tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(path, tf.int64, {_LINE_NUMBER}, tf.string, "
        f"{_WHOLE_LINE}), default_value='UNK')"
    ),
    "streaming_accuracy": (
        "tf.compat.v1.metrics.accuracy(labels=labels, predictions=predictions) (TF1's streaming_accuracy took "
        "predictions first)"
    ),
    "streaming_mean": "tf.compat.v1.metrics.mean(values)",
    "Dataset": "tf.data.Dataset (where map took num_threads, it takes num_parallel_calls)",
}
_REMOVED_MODULES = {
    "tensorflow.examples": (
        "the tutorial readers (tensorflow.examples.tutorials.mnist.input_data) were removed in "
        "TensorFlow 2; load the data with tf.keras.datasets.mnist.load_data() (NumPy arrays) "
        "and batch it yourself"
    ),
    "tensorflow.contrib": "tf.contrib was removed in TensorFlow 2",
}


def _replacement(name):
    """The "; use ..." hint for the last part of `name` that has one (`Dataset` in `tf.contrib.data.Dataset.range`)."""
    part = next((part for part in reversed(name.split(".")) if part in REPLACEMENTS), None)
    return f"; use {REPLACEMENTS[part]}" if part else ""


@functools.cache
def exists_in_tensorflow(name):
    """Whether the TF API name `name` (`tf.compat.v1.Session`) resolves on the installed TensorFlow.

    Looks attributes up module by module (never past the first non-module, e.g. `FLAGS`); names under
    tf.keras are taken as existing (resolving them would load Keras).
    """
    if in_module(name, "tf.keras") or in_module(name, "tf.compat.v1.keras"):
        return True
    value = tf
    for part in name.split(".")[1:]:
        if not isinstance(value, types.ModuleType):
            return True
        try:
            value = getattr(value, part)
        except Exception:  # AttributeError, and the "not available with Keras 3" stubs' errors
            return False
    return True


def why_not_converted(name):
    """Why the TF1 API name `name`, left in the upgraded program, cannot run, and what to use instead; None if it
    runs. The text does not repeat `name`."""
    module, _, symbol = name.rpartition(".")
    if name in MODULES:
        return f"{_why_module_fails(name)}; use the names of {MODULES[name]}"
    if module in MODULES:
        home = MODULES[module]
        has = f" (it has {', '.join(public_names(home))})" if module.endswith("layers") else ""
        replacement = _replacement(name) or "; port it by hand"
        return f"{_why_module_fails(module)}, and {home} has no {symbol}{has}{replacement}"
    if in_module(name, "tfa"):
        return "TensorFlow Addons has reached end of life and does not support Keras 3; tfstate has no replacement"
    if not name.startswith("tf.") or exists_in_tensorflow(name):
        return None
    if in_module(name, "tf.contrib"):
        hints = [
            message.replace("<function name>", name)
            for prefix, (_, message) in module_deprecations_v2.MODULE_DEPRECATIONS.items()
            if prefix not in ("tf.contrib", "tf.contrib.rnn", "tf.contrib.seq2seq") and in_module(name, prefix)
        ]
        replacement = _replacement(name) or " and tfstate has no replacement"
        return " ".join([f"tf.contrib was removed in TensorFlow 2{replacement}"] + hints)
    return f"it does not exist in TensorFlow {tf.__version__}{_replacement(name)}"


def _why_module_fails(module):
    """Why names of `module` fail on current TensorFlow, as a phrase."""
    return "tf.contrib was removed in TensorFlow 2" if in_module(module, "tf.contrib") else f"{module} {_KERAS2}"


def why_import_fails(python_path):
    """Why importing `python_path` (`tensorflow.contrib.rnn`) fails on current TensorFlow, or None if it works.

    Implementation modules (`tensorflow.python...`) are taken as still there.
    """
    for prefix, why in _REMOVED_MODULES.items():
        if in_module(python_path, prefix):
            return why
    path = api_path(python_path)
    if in_module(python_path, "tensorflow.python") or not path or exists_in_tensorflow(path):
        return None
    return f"{python_path} does not exist in TensorFlow {tf.__version__}"
