"""tfstate: TF1-style stateful RNN code, running correctly and fast on current TensorFlow.

Names load on first use (`tfstate.LSTMCell` imports `tfstate.cells`, and TensorFlow with it), so
that `tfstate --version` and `tfstate --help` answer at once and the command line can quiet
TensorFlow's start-up logging before TensorFlow loads.
"""

import importlib

__version__ = "0.2.0"

_NAMES = {
    "tfstate.cells": [
        "RNNCell",
        "LSTMStateTuple",
        "BasicRNNCell",
        "BasicLSTMCell",
        "LSTMCell",
        "GRUCell",
        "MultiRNNCell",
    ],
    "tfstate.state": ["RNNState", "STATE_VARIABLES"],
    "tfstate.rnn": ["dynamic_rnn", "bidirectional_dynamic_rnn", "stateful_dynamic_rnn", "StatefulRNN"],
    "tfstate.session": ["StatefulSession"],
    "tfstate.checkpoint": ["saveable_state"],
    "tfstate.hooks": ["StateHook"],
    "tfstate.keyed": ["KeyedState", "KeyedLookup"],
    "tfstate.keyed_rnn": ["keyed_dynamic_rnn", "KeyedRNN"],
    "tfstate.trace": ["StateTraceWrapper", "dynamic_rnn_with_states"],
    "tfstate.generation": ["generate"],
    "tfstate.layout": ["state_to_tuple", "state_to_concat", "tuple_layout"],
}
_MODULE_OF = {name: module for module, names in _NAMES.items() for name in names}
_SUBMODULES = [
    "rnn_cell",
    "layers",
    "fused",
    "native",
    "seq2seq",
    "legacy_seq2seq",
    "cudnn_rnn",
    "checkpoint",
    "cluster",
    "keyed",
    "serving",
]

__all__ = _SUBMODULES + list(_MODULE_OF)


def __getattr__(name):
    """Imports the module behind a public name on first use (PEP 562)."""
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"tfstate.{name}")
    else:
        raise AttributeError(f"module 'tfstate' has no attribute '{name}'")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
