"""The `tfstate` command line: `tfstate demo`, `upgrade`, `bench`, `native` (also `python -m tfstate`).

Each command lives in its own module, which provides `configure(parser)` (its arguments)
and `run(args)` (returns the exit status).
"""

import argparse
import importlib
import sys

_COMMANDS = {
    "demo": ("tfstate.demo", "train a stateful LSTM on a generated stream, generate, and plot"),
    "upgrade": ("tfstate.upgrade", "rewrite a TF1 RNN script so it runs on current TensorFlow"),
    "bench": ("tfstate.benchmarks.run", "benchmark tfstate against plain TF1 code, Keras 3 and PyTorch"),
    "native": ("tfstate.native", "build the compiled LSTM kernel now and say whether it is used"),
}


def _parser():
    parser = argparse.ArgumentParser(prog="tfstate", description="TF1-style stateful RNNs on current TensorFlow.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in _COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        command = commands.add_parser(name, help=help_text, description=help_text)
        module.configure(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
