"""The lines an upgraded program needs and did not have, put where they run before they are needed:

    import tensorflow as tf                       when the upgrade wrote names under `tf` and nothing binds `tf`
    import tfstate                                when the program now uses tfstate names
    tf.compat.v1.disable_eager_execution()        when it uses sessions or placeholders and is not in graph mode

They go right after the program's `import tensorflow` when that statement has its line to itself; after the
whole top-level statement holding it when it shares its line (`try: import tensorflow as tf`,
`x = f(); import tensorflow as tf`); at the top of the module (after its docstring and `__future__` imports)
when the program has no `import tensorflow`.
"""

import ast
import bisect
import io

from tfstate.upgrade.report import CHANGED, NOT_CONVERTED, Entry
from tfstate.upgrade.tables import ALREADY_GRAPH_MODE, GRAPH_MODE_NAMES

_WHY = {
    "tensorflow": "the upgraded program writes names under `tf`, which nothing binds",
    "tfstate": "the program now uses tfstate names",
    "graph": "sessions and placeholders need graph mode",
}


def add_needed_lines(text, tree, lines, names, pieces, used_after, line_map):
    """Inserts the needed lines into the upgraded `text`; returns (new text, report entries).

    Args:
        text: the upgraded program; tree, lines: the input program's ast and lines.
        names: its `names.Names`; pieces: the upgraded `pieces.Piece` objects.
        used_after: {name: [lines]} the upgraded program reads; line_map: a `diff.LineMap` of the upgrade.
    """
    wanted = _wanted(names, pieces, used_after)
    if not wanted:
        return text, []
    anchor = _root_import(tree, names)
    if anchor is None:
        after, indent = _module_top(tree), ""
    else:
        anchor, body = anchor
        point = _after_statement(tree, lines, anchor, body)
        if point is None:
            return text, [
                Entry(
                    anchor.lineno,
                    anchor.col_offset + 1,
                    NOT_CONVERTED,
                    f"add `{line}` by hand after this TensorFlow import ({_WHY[key]}): it shares its "
                    "line with other code inside a function",
                )
                for key, line in wanted
            ]
        after, indent = point
    out = io.StringIO(text, newline="").readlines()
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    at = line_map.output_line(after) if after else 0
    if at and not out[at - 1].endswith(("\n", "\r")):
        out[at - 1] += newline
    out[at:at] = [indent + line + newline for _, line in wanted]
    where = f"after line {after}" if after else "at the top"
    return "".join(out), [
        Entry(max(after, 1), 1, CHANGED, f"added `{line}` {where}: {_WHY[key]}") for key, line in wanted
    ]


def _wanted(names, pieces, used_after):
    """[(reason key, line)] the upgraded program needs."""
    used = [names.canonical(name) for piece in pieces for _, _, name in piece.dotted]
    graph = any(
        name.split(".")[0] in ("tf", "tfstate") and name.split(".")[-1] in GRAPH_MODE_NAMES for name in used
    ) and not any(name.split(".")[-1] in ALREADY_GRAPH_MODE for name in used)
    graph_line = names.spell("tf.compat.v1.disable_eager_execution") + "()"
    needs_tf = "tf" not in names.bound and ("tf" in used_after or graph and graph_line.startswith("tf."))
    return (
        [("tensorflow", "import tensorflow as tf")] * needs_tf
        + [("tfstate", "import tfstate")] * ("tfstate" in used_after and not names.imports_tfstate)
        + [("graph", graph_line)] * graph
    )


def _root_import(tree, names):
    """(node, the statement list holding it) of the first import binding the program's TensorFlow root; or None."""
    root = names.root or names.compat_root
    first = min(((a.line, a.col) for a in names.imports if a.local == root and not a.is_from), default=None)
    if first is None:
        return None
    for parent in ast.walk(tree):
        for _, value in ast.iter_fields(parent):
            for node in value if isinstance(value, list) else []:
                if isinstance(node, ast.Import) and (node.lineno, node.col_offset) == first:
                    return node, value
    raise LookupError(f"no import statement at line {first[0]}")


def _after_statement(tree, lines, node, body):
    """(input line after which to insert, indentation) for lines that must follow `node`; None if nowhere safe."""
    text = lines[node.lineno - 1]
    shares_line = text[: node.col_offset].strip() != "" or any(
        other.lineno == node.end_lineno for other in body[body.index(node) + 1 :]
    )
    if not shares_line:
        return node.end_lineno, text[: len(text) - len(text.lstrip())]
    starts = [statement.lineno for statement in tree.body]
    top = tree.body[bisect.bisect_right(starts, node.lineno) - 1]
    if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and top is not node:
        return None
    return max(s.end_lineno for s in tree.body if s.lineno <= top.end_lineno), ""


def _module_top(tree):
    """The input line after which module-level setup goes: after the docstring and `__future__` imports."""
    body = tree.body
    index = (
        1
        if body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
        else 0
    )
    while index < len(body) and isinstance(body[index], ast.ImportFrom) and body[index].module == "__future__":
        index += 1
    if index:
        return body[index - 1].end_lineno
    if not body:
        return 0
    first = body[0]
    return min([first.lineno] + [d.lineno for d in getattr(first, "decorator_list", [])]) - 1
