"""The `tfstate upgrade` command line: arguments, and where the upgraded programs and the report go.

    tfstate upgrade IN.py                   upgraded source to stdout, report to stderr
    tfstate upgrade IN.py -o OUT.py         write OUT.py, report to stdout
    tfstate upgrade A.py B.py --in-place    rewrite the files, report to stdout
    ... --report FILE                       also write the report to FILE (never one of the programs)

Exit status 0 when every file was upgraded (names it could not convert are in the report), 1 when a file
could not be read, parsed or written (nothing is written for it), 2 for a usage error.
"""

import sys

from tfstate.upgrade.errors import UpgradeError
from tfstate.upgrade.files import read_program, same_file, upgrade_file, write_text
from tfstate.upgrade.source import upgrade_source


def configure(parser):
    parser.description = (
        "Rewrite TF1 programs for current TensorFlow: TensorFlow's own tf_upgrade_v2 rules, with TF1 cells, "
        "layers, seq2seq and dynamic_rnn mapped to tfstate under every import spelling, TF1 summaries, flags, "
        "logging and app kept on tf.compat.v1, and `import tfstate` and graph mode added where needed. The input "
        "is never executed. Without -o or --in-place the upgraded source goes to stdout and the report to stderr; "
        "with them the report goes to stdout, one `file:line:col: kind: message` line per edit. Exit status 1 if "
        "a file cannot be read, parsed or written (nothing is written for it), 2 for a usage error."
    )
    parser.add_argument("files", nargs="+", metavar="IN.py", help="TF1 program(s) to upgrade")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="OUT.py", help="write the upgraded program here (one input only)")
    where.add_argument("--in-place", action="store_true", help="rewrite each input file in place")
    parser.add_argument("--report", metavar="FILE", help="also write the per-line report to FILE")


def _usage_error(args):
    """The message for arguments that cannot work together, or None."""
    if len(args.files) > 1 and not args.in_place:
        return f"{len(args.files)} files given; several files need --in-place (-o and stdout take one file)."
    if args.report:
        for path, what in [(path, "the input") for path in args.files] + [(args.output, "the output (-o)")]:
            if path and same_file(args.report, path):
                return (
                    f"--report {args.report} is the same file as {what} {path}; nothing was written. "
                    "Give the report a file of its own."
                )
    return None


def run(args):
    problem = _usage_error(args)
    if problem:
        print(f"tfstate upgrade: {problem}", file=sys.stderr)
        return 2
    to_stdout = not (args.output or args.in_place)
    reports, status = [], 0
    for path in args.files:
        out_path = "stdout" if to_stdout else path if args.in_place else args.output
        try:
            if to_stdout:
                text, _ = read_program(path)
                new_text, report = upgrade_source(text, path)
                sys.stdout.write(new_text)
            else:
                report = upgrade_file(path, out_path)
        except UpgradeError as error:
            print(f"tfstate upgrade: error: {error}", file=sys.stderr)
            status = 1
            continue
        except OSError as error:
            print(
                f"tfstate upgrade: error: cannot write {out_path} ({error.strerror or error}); nothing was written.",
                file=sys.stderr,
            )
            status = 1
            continue
        reports.append(str(report))
    text = "\n".join(reports)
    if text:
        print(text, file=sys.stderr if to_stdout else sys.stdout)
    if args.report:
        try:
            write_text(args.report, text + "\n", "utf-8")
        except OSError as error:
            print(f"tfstate upgrade: error: cannot write the report: {error}", file=sys.stderr)
            return 1
    return status
