"""The program's TensorFlow imports after its names were upgraded: dead ones removed, moved modules re-pointed.

    from tensorflow.contrib import rnn        (every rnn.X rewritten)    -> removed
    from tensorflow.contrib import rnn        (rnn.NASCell still used)   -> kept, reported not converted
    from tensorflow import flags                                         -> from tensorflow.compat.v1 import flags
    import tensorflow.contrib.rnn             (binds `tensorflow`)       -> import tensorflow

An import is removed only where the upgrade made it dead (its name was used before and is not now) or where
it would fail on current TensorFlow; a statement left with no names is deleted (its comments move to the
next statement), or becomes `pass` where it was the only statement of its block.
"""

import ast
import collections

import pasta
from pasta.base import formatting

from tfstate.upgrade.reasons import why_import_fails
from tfstate.upgrade.report import CHANGED, NOT_CONVERTED, Entry
from tfstate.upgrade.tables import module_rename


def tidy(pieces, names, used_after):
    """Edits the pieces' import statements (see the module docstring); returns the report entries.

    Args:
        pieces: the upgraded `pieces.Piece` objects.
        names: the program's `names.Names`.
        used_after: {name: [lines]} the upgraded program reads.
    """
    statements = collections.defaultdict(list)
    for alias in names.imports:
        statements[alias.line, alias.col].append(alias)
    found = {}  # (input line, col) -> (import node, parent) in the pieces' trees
    for piece in pieces:
        if piece.tree is not None:
            found.update(
                ((node.lineno + piece.offset, node.col_offset), (node, parent))
                for parent in ast.walk(piece.tree)
                for node in ast.iter_child_nodes(parent)
                if isinstance(node, (ast.Import, ast.ImportFrom))
            )
    entries = []
    for where, aliases in statements.items():
        node, parent = found[where]
        entries += _tidy_statement(node, parent, aliases, names, used_after)
    return entries


def _tidy_statement(node, parent, aliases, names, used_after):
    where = (aliases[0].line, aliases[0].col + 1)
    statement = pasta.dump(node).strip()
    moved = [alias for alias in aliases if alias.local in names.whole_modules]
    entries, dead = [_repoint(node, moved, statement, where)] if moved else [], set()
    for alias in aliases:
        fails = why_import_fails(alias.python_path)
        if alias in moved:
            continue
        if alias.local in used_after:
            if alias.local == "tensorflow" and not alias.is_from and fails:
                node.names[alias.index].name = "tensorflow"
                entries.append(
                    Entry(
                        *where,
                        CHANGED,
                        f"Changed `import {alias.python_path}` to `import tensorflow`: "
                        f"{fails}, and the name 'tensorflow' is still used",
                    )
                )
            elif fails:
                lines = ", ".join(str(line) for line in sorted(set(used_after[alias.local])))
                entries.append(
                    Entry(
                        *where,
                        NOT_CONVERTED,
                        f"import of {alias.python_path}: {fails}; '{alias.local}' is still used (line {lines})",
                    )
                )
        elif (
            alias.local not in (names.root, names.compat_root)
            and alias.local not in names.conflicts
            and (fails or (alias.path and alias.local in names.used))
        ):
            dead.add(alias.index)
    if not dead:
        return entries
    node.names = [alias for index, alias in enumerate(node.names) if index not in dead]
    removed = ", ".join(f"'{alias.local}'" for alias in aliases if alias.index in dead)
    if node.names:
        return entries + [
            Entry(*where, CHANGED, f"Removed {removed} from `{statement}`: nothing uses {removed} after the upgrade")
        ]
    left = _drop_statement(parent, node)
    return entries + [Entry(*where, CHANGED, f"Removed `{statement}`{left}: nothing uses {removed} after the upgrade")]


def _import_path(name):
    """The import path of the TF API name `name`: tf.compat.v1.flags -> tensorflow.compat.v1.flags."""
    return "tensorflow" + name[len("tf") :]


def _repoint(node, moved, statement, where):
    """Points the import of modules that moved whole (tf.flags, tf.logging) at their tf.compat.v1 homes."""
    new_paths = [_import_path(module_rename(alias.path)) for alias in moved]
    if not isinstance(node, ast.ImportFrom):
        for alias, new_path in zip(moved, new_paths):
            node.names[alias.index].name = new_path
        return Entry(
            *where,
            CHANGED,
            f"Changed `{statement}` to `{pasta.dump(node).strip()}`: "
            f"{', '.join(alias.path for alias in moved)} moved to tf.compat.v1",
        )
    homes = {new_path.rpartition(".")[0] for new_path in new_paths}
    if len(moved) != len(node.names) or len(homes) != 1:
        lines = "; ".join(f"`from {path.rpartition('.')[0]} import {path.rpartition('.')[2]}`" for path in new_paths)
        return Entry(
            *where,
            NOT_CONVERTED,
            f"{', '.join(alias.path for alias in moved)} moved to tf.compat.v1; "
            f"import it on a line of its own: {lines}",
        )
    node.module = homes.pop()
    return Entry(
        *where,
        CHANGED,
        f"Changed `{statement}` to `{pasta.dump(node).strip()}`: "
        f"{', '.join(alias.path for alias in moved)} moved to tf.compat.v1",
    )


def _drop_statement(parent, node):
    """Deletes `node` from its block (its comments go to the next statement); returns how, for the report."""
    body = next(value for _, value in ast.iter_fields(parent) if isinstance(value, list) and node in value)
    if len(body) == 1:
        pasta.ast_utils.replace_child(parent, node, ast.Pass())
        return " (leaving `pass`, the only statement of its block)"
    index = body.index(node)
    prefix = formatting.get(node, "prefix") or ""
    comments = prefix[: prefix.rfind("\n") + 1]
    del body[index]
    if comments and index < len(body):
        formatting.set(body[index], "prefix", comments + (formatting.get(body[index], "prefix") or ""))
    return ""
