"""What an upgraded program still uses that cannot run on current TensorFlow: one report line per name and line.

Every dotted name left in the upgraded pieces is read through the program's aliases (`rnn.NASCell` is
tf.contrib.rnn.NASCell) and checked by `reasons.why_not_converted` (tfstate's tables, then the installed
TensorFlow itself). Star imports of TensorFlow modules and names bound to different things are reported too.
"""

from tfstate.upgrade.reasons import why_import_fails, why_not_converted
from tfstate.upgrade.report import NOT_CONVERTED, Entry


def unconverted(pieces, names, used_after):
    """Report entries for what the upgraded pieces still use that fails; `used_after`: {name: [lines]} read."""
    entries, seen = [], set()
    for piece in pieces:
        for line, col, written in piece.dotted:
            if line is None:  # a name the upgrade wrote
                continue
            name = names.canonical(written)
            why = (line, name) not in seen and why_not_converted(name)
            if why:
                seen.add((line, name))
                alias = f" ({name})" if name != written else ""
                entries.append(Entry(line, col + 1, NOT_CONVERTED, f"{written}{alias}: {why}"))
    entries += _star_imports(names)
    for local, bound in names.conflicts.items():
        if local in used_after:
            line, path = next((line, path) for line, path in bound if path)
            others = ", ".join(str(line) for line, other in bound if other != path)
            entries.append(
                Entry(
                    line,
                    1,
                    NOT_CONVERTED,
                    (
                        f"'{local}' is bound to {path} here and to something else on line {others}; "
                        "tfstate upgrade reads a name as a TensorFlow module only when all its bindings agree, "
                        "so its uses were left as they were: bind it once"
                    ),
                )
            )
    return entries


def _star_imports(names):
    for node in names.star_imports:
        fails = why_import_fails(node.module)
        yield Entry(
            node.lineno,
            node.col_offset + 1,
            NOT_CONVERTED,
            (
                f"`from {node.module} import *`: {fails + '; ' if fails else ''}tfstate upgrade cannot tell which "
                f"names it brings; import the names you use by name (`from {node.module} import X`) and upgrade again"
            ),
        )
