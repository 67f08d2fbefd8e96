"""`tfstate upgrade`: rewrite a TF1 RNN script so that it runs on current TensorFlow.

TensorFlow's own `tf_upgrade_v2` turns `tf.contrib.rnn.LSTMCell` and `tf.nn.rnn_cell.*` into
`tf.compat.v1.nn.rnn_cell.*`, which raise "not available with Keras 3" on TensorFlow 2.16+, and
cannot convert `tf.contrib.layers.fully_connected` at all. This module runs TensorFlow's own
upgrader (`tensorflow.tools.compatibility`: `ast_edits.ASTCodeUpgrader` with the
`tf_upgrade_v2.TFAPIChangeSpec`), with tfstate's rules laid over its rename table:

    tf.contrib.rnn.X, tf.nn.rnn_cell.X, tf.compat.v1.nn.rnn_cell.X  ->  tfstate.rnn_cell.X
        (X one of tfstate.rnn_cell.__all__; other names are left alone and reported)
    tf.layers.dense, tf.compat.v1.layers.dense                      ->  tfstate.layers.dense
    tf.contrib.layers.fully_connected                               ->  tfstate.layers.fully_connected
    tf.nn.dynamic_rnn, tf.compat.v1.nn.dynamic_rnn                  ->  tfstate.dynamic_rnn
    tf.nn.bidirectional_dynamic_rnn (and its compat.v1 name)        ->  tfstate.bidirectional_dynamic_rnn
        (the same functions, which also run fused cells over the whole chunk)
    everything else                                                 ->  TensorFlow's rules
                                                                        (tf.Session -> tf.compat.v1.Session, ...)

then adds, after the TensorFlow import, `import tfstate` (when a tfstate name is used) and
`tf.compat.v1.disable_eager_execution()` (when the script uses sessions or placeholders and
does not already disable eager execution or v2 behaviour). Names that still cannot work on
Keras 3 (`tf.contrib.*`, `tf.compat.v1.layers.*`, rnn_cell names tfstate lacks, imports of
`tensorflow.contrib`) are left as they were and reported as not converted, with why.
The classic keep op `tf.tuple([v.assign(x), ...])` is left as it is: in TF 2.21 graph mode
`tf.tuple` accepts the value a resource variable's `assign` returns (tests/test_upgrade.py pins this).

The input is parsed, never executed. Python 2 source (`print x`) is refused with an error
naming the file and line. Outputs are written atomically (temporary file + `os.replace`), so a
failed upgrade never leaves a half-written file.

Command line:

    tfstate upgrade IN.py                   upgraded source to stdout, report to stderr
    tfstate upgrade IN.py -o OUT.py         write OUT.py, report to stdout
    tfstate upgrade A.py B.py --in-place    rewrite the files, report to stdout
    ... --report FILE                       also write the report to FILE

Exit status 0 when every file was upgraded (names it could not convert are in the report),
1 when a file could not be read or parsed (that file's output is not written), 2 for a usage error.

Python API:

    new_text, report = upgrade_source(text, filename="<string>")
    report = upgrade_file("IN.py", "OUT.py")       # same path: in place
    print(report)                                   # one line per change, `file:line:col: kind: message`
"""

import ast
import contextlib
import dataclasses
import io
import os
import sys
import tokenize

from tensorflow.tools.compatibility import ast_edits, module_deprecations_v2, tf_upgrade_v2

from tfstate import rnn_cell
from tfstate._files import atomic_writer

CHANGED, NOTE, CHECK, NOT_CONVERTED = "changed", "note", "check", "not converted"
_KIND_OF_SEVERITY = {ast_edits.INFO: CHANGED, NOTE: NOTE, ast_edits.WARNING: CHECK, ast_edits.ERROR: NOT_CONVERTED}

_CELL_MODULES = ("tf.contrib.rnn", "tf.nn.rnn_cell", "tf.compat.v1.nn.rnn_cell", "contrib_rnn")
_FUNCTIONS = {  # TF1 functions with a tfstate replacement, under their TF1 and tf_upgrade_v2 names
    "tf.nn.dynamic_rnn": "tfstate.dynamic_rnn",
    "tf.compat.v1.nn.dynamic_rnn": "tfstate.dynamic_rnn",
    "tf.nn.bidirectional_dynamic_rnn": "tfstate.bidirectional_dynamic_rnn",
    "tf.compat.v1.nn.bidirectional_dynamic_rnn": "tfstate.bidirectional_dynamic_rnn",
    "tf.layers.dense": "tfstate.layers.dense",
    "tf.compat.v1.layers.dense": "tfstate.layers.dense",
    "tf.contrib.layers.fully_connected": "tfstate.layers.fully_connected",
    "contrib_layers.fully_connected": "tfstate.layers.fully_connected",
}
# Calls whose presence means the script builds a graph and runs it in a session.
_GRAPH_MODE_NAMES = {"Session", "InteractiveSession", "MonitoredSession", "MonitoredTrainingSession",
                     "SingularMonitoredSession", "placeholder", "placeholder_with_default", "sparse_placeholder",
                     "StatefulSession"}
_ALREADY_GRAPH_MODE = {"disable_eager_execution", "disable_v2_behavior"}


class UpgradeError(ValueError):
    """The input cannot be upgraded (unreadable or unparseable); nothing was written."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One report line: at `line`:`col` of the input (both from 1), a `kind` of edit.

    Kinds: "changed" (an edit made), "check" (TF's upgrader asks for a manual check),
    "not converted" (left as it was, and why it will not run), "note".
    """

    line: int
    col: int
    kind: str
    message: str


@dataclasses.dataclass
class Report:
    """What the upgrade of one file changed, and what it could not convert and why."""

    filename: str
    entries: list

    def of_kind(self, kind):
        return [entry for entry in self.entries if entry.kind == kind]

    @property
    def changed(self):
        return self.of_kind(CHANGED)

    @property
    def not_converted(self):
        return self.of_kind(NOT_CONVERTED)

    def __str__(self):
        lines = [f"{self.filename}:{e.line}:{e.col}: {e.kind}: {e.message}" for e in self.entries]
        counts = ", ".join(f"{len(self.of_kind(kind))} {kind}" for kind in (CHANGED, CHECK, NOT_CONVERTED))
        return "\n".join(lines + [f"{self.filename}: {counts}"])


def _tfstate_name(name):
    """The tfstate name that replaces TF1's `name`, or None when tfstate has none."""
    module, _, symbol = name.rpartition(".")
    if module in _CELL_MODULES and symbol in rnn_cell.__all__:
        return f"tfstate.rnn_cell.{symbol}"
    return _FUNCTIONS.get(name)


class TfstateChangeSpec(tf_upgrade_v2.TFAPIChangeSpec):
    """TensorFlow's v1 -> v2 change spec, with tfstate's renames laid over its rename table.

    Every TF rename into the broken `tf.compat.v1.nn.rnn_cell` namespace is redirected to
    `tfstate.rnn_cell`, and the rnn_cell / layers names TF leaves alone get tfstate renames.
    TF's notices about `tf.contrib` are dropped: the names still there after the upgrade are
    reported by `upgrade_source` itself, with tfstate's reason.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._add_tfstate_rules()

    def _add_tfstate_rules(self):
        old_names = list(self.symbol_renames) + list(_FUNCTIONS)
        old_names += [f"{module}.{symbol}" for module in _CELL_MODULES for symbol in rnn_cell.__all__]
        ours = {}
        for old in old_names:
            new = _tfstate_name(self.symbol_renames.get(old, old)) or _tfstate_name(old)
            if new:
                ours[old] = new
        self.symbol_renames = {**self.symbol_renames, **ours}  # never edit TF's shared table in place
        self.function_warnings = {k: v for k, v in self.function_warnings.items() if k not in ours}
        self.module_deprecations = {k: v for k, v in self.module_deprecations.items()
                                    if not k.startswith("tf.contrib")}

    def preprocess(self, root_node, after_compat_v1_upgrade=False):
        """TF's preprocess. Where it turns TF's rules off (`import tensorflow.compat.v1 as tf`), ours stay on."""
        root_node, logs, errors = super().preprocess(root_node, after_compat_v1_upgrade)
        if not self.symbol_renames:
            self._add_tfstate_rules()
        # Preprocess logs describe what TF found, not an edit.
        logs = [(NOTE,) + log[1:-1] + (log[-1] + " tfstate's renames still apply.",)
                if log[0] == ast_edits.INFO else log for log in logs]
        return root_node, logs, errors


class _Upgrader(ast_edits.ASTCodeUpgrader):
    """TF's upgrader, keeping its logs as (severity, line, col, message) tuples instead of text."""

    def format_log(self, log, in_filename):
        return log


def _dotted_names(tree):
    """(node, "a.b.c") for every maximal dotted name in the tree, e.g. `tf.contrib.rnn.LSTMCell`."""
    inner = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            inner.add(id(node.value))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Attribute, ast.Name)) and id(node) not in inner:
            parts = []
            while isinstance(node, ast.Attribute):
                parts.append(node.attr)
                node = node.value
            if isinstance(node, ast.Name):
                yield node, ".".join([node.id] + parts[::-1])


def _in_module(name, module):
    return name == module or name.startswith(module + ".")


def _why_not_converted(name):
    """Why `name`, left in the upgraded script, cannot run on Keras 3; None when it can."""
    module, _, symbol = name.rpartition(".")
    if name in _CELL_MODULES:
        return (f"the module {name} is not available with Keras 3; use its names from tfstate.rnn_cell "
                f"({', '.join(rnn_cell.__all__)})")
    if module in _CELL_MODULES:
        return (f"{name} is not available with Keras 3 and tfstate.rnn_cell has no {symbol} "
                f"(it has {', '.join(rnn_cell.__all__)}); port it by hand")
    if _in_module(name, "tf.layers") or _in_module(name, "tf.compat.v1.layers"):
        return (f"{name} is not available with Keras 3; tfstate.layers has only dense and "
                f"fully_connected; port it by hand (e.g. to tf.keras.layers, managing variables yourself)")
    if _in_module(name, "tf.contrib"):
        hints = [message for prefix, (_, message) in module_deprecations_v2.MODULE_DEPRECATIONS.items()
                 if prefix not in ("tf.contrib", "tf.contrib.rnn") and _in_module(name, prefix)]
        return " ".join([f"tf.contrib was removed in TensorFlow 2 and tfstate has no {name}."] + hints)
    if _in_module(name, "tfa"):
        return (f"{name} is TensorFlow Addons, which has reached end of life and does not support Keras 3; "
                "tfstate has no replacement")
    return None


def _unconvertible(tree):
    """Report entries for what the upgraded tree still uses that cannot run on current TensorFlow."""
    entries = []
    for node, name in _dotted_names(tree):
        why = _why_not_converted(name)
        if why:
            entries.append(Entry(node.lineno, node.col_offset + 1, NOT_CONVERTED, why))
    for node in ast.walk(tree):
        modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                   else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        for module in modules:
            if _in_module(module, "tensorflow.contrib"):
                entries.append(Entry(node.lineno, node.col_offset + 1, NOT_CONVERTED, (
                    f"import of {module}: tf.contrib was removed in TensorFlow 2; tfstate converts "
                    "tf.contrib.rnn cells and tf.contrib.layers.fully_connected (also as contrib_rnn.X / "
                    "contrib_layers.X), so delete this import once nothing else uses it")))
    return entries


def _tensorflow_import(tree):
    """(import node, name it binds) for the script's first `import tensorflow [...] [as tf]`, or (None, None)."""
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import)]
    for node in sorted(imports, key=lambda node: node.lineno):
        for alias in node.names:
            if alias.name == "tensorflow" or alias.name.startswith("tensorflow."):
                return node, alias.asname or alias.name.split(".")[0]
    return None, None


def _add_lines(text, tree):
    """Adds `import tfstate` and graph mode after the TensorFlow import where needed; returns (text, entries)."""
    node, tf_name = _tensorflow_import(tree)
    names = [name.split(".") for _, name in _dotted_names(tree)]
    imported = any(isinstance(n, ast.Import) and any(a.name == "tfstate" and not a.asname for a in n.names)
                   for n in ast.walk(tree))
    needs_tfstate = not imported and any(parts[0] == "tfstate" for parts in names)
    needs_graph_mode = (any(parts[0] in (tf_name, "tf", "tfstate") and parts[-1] in _GRAPH_MODE_NAMES
                            for parts in names if len(parts) > 1)
                        and not any(parts[-1] in _ALREADY_GRAPH_MODE for parts in names))
    if not (needs_tfstate or needs_graph_mode):
        return text, []
    wanted = ["import tfstate"] * needs_tfstate
    wanted += [f"{tf_name or 'tf'}.compat.v1.disable_eager_execution()"] * needs_graph_mode
    if node is None:
        return text, [Entry(1, 1, NOT_CONVERTED, f"no `import tensorflow` found; add `{line}` by hand after it")
                      for line in wanted]
    lines = io.StringIO(text, newline="").readlines()  # the line breaks ast counts, unlike str.splitlines
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    if not lines[node.end_lineno - 1].endswith(("\n", "\r")):
        lines[node.end_lineno - 1] += newline
    indent = lines[node.lineno - 1][:node.col_offset]
    lines[node.end_lineno:node.end_lineno] = [indent + line + newline for line in wanted]
    why = {"import tfstate": "the script now uses tfstate names",
           f"{tf_name}.compat.v1.disable_eager_execution()": "sessions and placeholders need graph mode"}
    return "".join(lines), [Entry(node.lineno, node.col_offset + 1, CHANGED,
                                  f"added `{line}` after the TensorFlow import: {why[line]}") for line in wanted]


def _parse(text, filename):
    try:
        return ast.parse(text, filename)
    except SyntaxError as error:
        source = f"\n    {error.text.strip()}" if error.text else ""
        raise UpgradeError(
            f"{filename}:{error.lineno}:{error.offset}: cannot parse as Python 3 ({error.msg}).{source}\n"
            "tfstate upgrade reads Python 3 source and never runs it; port Python 2 code first "
            "(e.g. `print x` -> `print(x)`).") from None
    except ValueError as error:  # e.g. null bytes
        raise UpgradeError(f"{filename}: cannot parse as Python 3 ({error}).") from None


def upgrade_source(text, filename="<string>"):
    """Upgrades the TF1 source `text`; returns `(new_text, report)`. Never executes the text.

    Raises:
        UpgradeError: `text` is not Python 3 (the message names `filename`, line and column).
    """
    _parse(text, filename)
    with contextlib.redirect_stdout(io.StringIO()):  # TF's visitor prints every log line
        parsed, new_text, logs, _ = _Upgrader(TfstateChangeSpec()).update_string_pasta(text, filename)
    if not parsed:  # Python parsed it, pasta (TF's parser) did not
        raise UpgradeError(f"{filename}: TensorFlow's upgrader could not parse this file: "
                           f"{logs[-1].strip().splitlines()[-1]}")
    tree = _parse(new_text, filename)
    # pasta edits in place, so lines of TF's output are the input's lines until _add_lines inserts.
    entries = [Entry(line, col + 1, _KIND_OF_SEVERITY.get(severity, CHECK), message)
               for severity, line, col, message in logs]
    entries += _unconvertible(tree)
    new_text, added = _add_lines(new_text, tree)
    entries = sorted(entries + added, key=lambda e: (e.line, e.col))
    return new_text, Report(filename, entries)


def _read(path):
    """(text, encoding) of a Python file, honouring its coding cookie and keeping its line endings."""
    try:
        with open(path, "rb") as file:
            encoding, _ = tokenize.detect_encoding(file.readline)
        with open(path, encoding=encoding, newline="") as file:
            return file.read(), encoding
    except (OSError, SyntaxError, UnicodeDecodeError) as error:
        raise UpgradeError(f"{path}: cannot read it as Python source ({error}).") from None


def _write_atomically(path, text, encoding, mode_from=None):
    """Writes `text` to a temporary file beside `path`, then renames it over `path`.

    The file gets the permissions of `mode_from` (or of `path` where it exists), else the umask's.
    """
    mode_from = path if os.path.exists(path) else mode_from
    if mode_from is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    else:
        mode = os.stat(mode_from).st_mode & 0o7777
    with atomic_writer(path, encoding=encoding, newline="", permissions=mode) as file:
        file.write(text)


def upgrade_file(in_path, out_path):
    """Upgrades the file `in_path` into `out_path` (the same path upgrades in place); returns the report.

    Raises:
        UpgradeError: the input cannot be read or parsed; `out_path` is left untouched.
        OSError: `out_path` cannot be written; it is left untouched.
    """
    text, encoding = _read(in_path)
    new_text, report = upgrade_source(text, in_path)
    _write_atomically(out_path, new_text, encoding, mode_from=in_path)
    return report


def configure(parser):
    parser.description = (
        "Rewrite TF1 scripts for current TensorFlow: TensorFlow's own tf_upgrade_v2 rules, with "
        "tf.contrib.rnn / tf.nn.rnn_cell cells and tf.layers.dense / tf.contrib.layers.fully_connected "
        "mapped to tfstate, `import tfstate` and graph mode added where needed. The input is never executed. "
        "Without -o or --in-place the upgraded source goes to stdout and the report to stderr; with them the "
        "report goes to stdout, one `file:line:col: kind: message` line per edit. Exit status 1 if a file "
        "cannot be read or parsed (nothing is written for it), 2 for a usage error.")
    parser.add_argument("files", nargs="+", metavar="IN.py", help="TF1 script(s) to upgrade")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="OUT.py", help="write the upgraded script here (one input only)")
    where.add_argument("--in-place", action="store_true", help="rewrite each input file in place")
    parser.add_argument("--report", metavar="FILE", help="also write the per-line report to FILE")


def run(args):
    if len(args.files) > 1 and not args.in_place:
        print(f"tfstate upgrade: {len(args.files)} files given; several files need --in-place "
              "(-o and stdout take one file).", file=sys.stderr)
        return 2
    to_stdout = not (args.output or args.in_place)
    reports, status = [], 0
    for path in args.files:
        out_path = "stdout" if to_stdout else path if args.in_place else args.output
        try:
            if to_stdout:
                text, _ = _read(path)
                new_text, report = upgrade_source(text, path)
                sys.stdout.write(new_text)
            else:
                report = upgrade_file(path, out_path)
        except UpgradeError as error:
            print(f"tfstate upgrade: error: {error}", file=sys.stderr)
            status = 1
            continue
        except OSError as error:
            print(f"tfstate upgrade: error: cannot write {out_path} ({error.strerror or error}); "
                  "nothing was written.", file=sys.stderr)
            status = 1
            continue
        reports.append(str(report))
    text = "\n".join(reports)
    if text:
        print(text, file=sys.stderr if to_stdout else sys.stdout)
    if args.report:
        try:
            _write_atomically(args.report, text + "\n", "utf-8")
        except OSError as error:
            print(f"tfstate upgrade: error: cannot write the report: {error}", file=sys.stderr)
            return 1
    return status
