"""The `tfstate` command line: `tfstate demo`, `tfstate upgrade`, `tfstate bench`."""

import argparse
import sys


def _parser():
    parser = argparse.ArgumentParser(
        prog="tfstate", description="TF1-style stateful RNNs on current TensorFlow.")
    parser.add_subparsers(dest="command", metavar="COMMAND")
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
