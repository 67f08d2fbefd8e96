"""`upgrade_source`: one TF1 program's text in, the upgraded text and its report out. Never runs the text.

tree   = parse(text)                       Python's parser; errors name file, line and column
names  = Names(tree)                       the program's TensorFlow aliases, read once for the whole file
pieces = cut(tree)                         runs of top-level statements, each upgraded on its own:
    piece.upgrade(spec, names)             TensorFlow's upgrade visitor with tfstate's rules (pasta)
tidy imports, report what still fails, dump the pieces, add the lines the program needs
parse(new text)                            an output that does not parse is an error, never written
"""

import ast
import io

from tfstate.upgrade import imports
from tfstate.upgrade.additions import add_needed_lines
from tfstate.upgrade.diff import LineMap
from tfstate.upgrade.errors import UpgradeError
from tfstate.upgrade.names import Names
from tfstate.upgrade.pieces import cut, statement_spans
from tfstate.upgrade.report import Report, entry_from_log, truthful
from tfstate.upgrade.rules import TfstateChangeSpec
from tfstate.upgrade.unconverted import unconverted

MAX_INPUT_CHARS = 4 * 1024 * 1024


def parse(text, filename):
    """Python's ast of `text`; UpgradeError (naming file, line and column) where Python cannot parse it."""
    try:
        return ast.parse(text, filename)
    except SyntaxError as error:
        source = f"\n    {error.text.strip()}" if error.text else ""
        raise UpgradeError(
            f"{filename}:{error.lineno}:{error.offset}: cannot parse as Python 3 ({error.msg}).{source}\n"
            "tfstate upgrade reads Python 3 source and never runs it; port Python 2 code first "
            "(e.g. `print x` -> `print(x)`)."
        ) from None
    except (RecursionError, MemoryError):
        raise UpgradeError(
            f"{filename}: cannot parse as Python 3: an expression is nested too deeply for Python's parser "
            "(so Python cannot run this file either); split it into smaller expressions."
        ) from None
    except ValueError as error:  # e.g. null bytes
        raise UpgradeError(f"{filename}: cannot parse as Python 3 ({error}).") from None


def upgrade_source(text, filename="<string>"):
    """Upgrades the TF1 program `text`; returns `(new_text, report)`. Never executes the text.

    Raises:
        UpgradeError: `text` is not Python 3, is longer than MAX_INPUT_CHARS, nests deeper than the upgrader
            can follow, or its upgrade would not parse (the message names `filename` and the line).
    """
    if len(text) > MAX_INPUT_CHARS:
        raise UpgradeError(
            f"{filename}: {len(text)} characters; tfstate upgrade takes programs of up to "
            f"{MAX_INPUT_CHARS} characters (4 MiB). Split the file into modules."
        )
    tree = parse(text, filename)
    lines = io.StringIO(text, newline="").readlines()  # the line breaks ast counts, unlike str.splitlines
    names = Names(tree)
    spec = TfstateChangeSpec(tensorflow_rules=names.tensorflow_rules)
    pieces = cut(tree, lines)
    import_lines = {alias.line for alias in names.imports}
    for piece in pieces:
        piece.upgrade(spec, names, filename, keep_tree=any(piece.holds(line) for line in import_lines))
    entries = [entry_from_log(*log) for piece in pieces for log in piece.log]
    used_after = {}
    for piece in pieces:
        for name, where in piece.loaded.items():
            used_after.setdefault(name, []).extend(where)
    entries += imports.tidy(pieces, names, used_after)  # removing imports reads no names: used_after stays
    entries += unconverted(pieces, names, used_after)
    line_map, outputs = LineMap(), []
    for piece in pieces:
        outputs.append(piece.dump(filename))
        line_map.add(piece.first_line, piece.lines, io.StringIO(outputs[-1], newline="").readlines())
    entries = truthful(entries, line_map.changed, statement_spans(tree))
    new_text, added = add_needed_lines("".join(outputs), tree, lines, names, pieces, used_after, line_map)
    try:
        ast.parse(new_text, filename)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        where = f" (line {error.lineno}: {error.msg})" if isinstance(error, SyntaxError) else f" ({error!r})"
        raise UpgradeError(
            f"{filename}: the upgraded program would not parse{where}, so nothing was written; "
            "this is a defect of tfstate upgrade: please report it with this file."
        ) from None
    return new_text, Report(filename, sorted(entries + added))
