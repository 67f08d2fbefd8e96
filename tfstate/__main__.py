"""The `tfstate` command line: `tfstate demo`, `upgrade`, `bench`, `native` (also `python -m tfstate`).

Each command lives in its own module, which provides `configure(parser)` (its arguments)
and `run(args)` (returns the exit status). Only the chosen command's module is imported, after
TensorFlow's C++ start-up logging is quieted (unless `TF_CPP_MIN_LOG_LEVEL` is set already).
"""

import argparse
import contextlib
import importlib
import logging
import os
import sys

from tfstate import __version__

_COMMANDS = {
    "demo": ("tfstate.demo", "train a stateful LSTM on a generated stream, generate, and plot"),
    "upgrade": ("tfstate.upgrade", "rewrite a TF1 RNN script so it runs on current TensorFlow"),
    "bench": ("tfstate.benchmarks.run", "benchmark tfstate against plain TF1 code, Keras 3 and PyTorch"),
    "native": ("tfstate.native", "build the compiled LSTM kernel now and say whether it is used"),
}


@contextlib.contextmanager
def _stderr_muted():
    """Sends file descriptor 2 to /dev/null for the block (C++ writes there, past Python's sys.stderr)."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _quiet_tensorflow():
    """Keeps TensorFlow's start-up lines (oneDNN, CPU features, CUDA) out of a command's output.

    TensorFlow writes them before its logging honours TF_CPP_MIN_LOG_LEVEL, at import and at the
    first device query, so those two steps run with stderr muted; later C++ logging is limited to
    errors. A user who sets TF_CPP_MIN_LOG_LEVEL gets TensorFlow's own behaviour.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with _stderr_muted():
        import tensorflow as tf

        tf.config.list_physical_devices()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="tfstate", description="TF1-style stateful RNNs on current TensorFlow.")
    parser.add_argument("--version", action="version", version=f"tfstate {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in _COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    known = parser.parse_args(argv[:1])
    if known.command is None:
        parser.print_help()
        return 0
    _quiet_tensorflow()
    module_name, help_text = _COMMANDS[known.command]
    module = importlib.import_module(module_name)
    command = argparse.ArgumentParser(prog=f"tfstate {known.command}", description=help_text)
    module.configure(command)
    return module.run(command.parse_args(argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
