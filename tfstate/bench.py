"""`tfstate bench`: the benchmark suite (benchmarks/) against plain TF1 code, Keras 3 and PyTorch."""

import os
import sys


def _harness():
    """The `benchmarks.run` module: importable, or found next to this package in a source checkout."""
    try:
        from benchmarks import run
        return run
    except ImportError:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if not os.path.isdir(os.path.join(root, "benchmarks")):
            return None
        sys.path.insert(0, root)
        from benchmarks import run
        return run


def configure(parser):
    harness = _harness()
    if harness is not None:
        harness.configure(parser)


def run(args):
    harness = _harness()
    if harness is None:
        print("tfstate bench needs the benchmarks/ folder of a tfstate source checkout "
              "(git clone, then run `tfstate bench` or `python -m benchmarks.run` there).", file=sys.stderr)
        return 2
    return harness.run(args)
