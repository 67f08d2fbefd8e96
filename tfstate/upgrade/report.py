"""The upgrade report: one `file:line:col: kind: message` line per edit, in the input's lines and columns.

Kinds: "changed" (an edit made on that line), "check" (made or left, but its meaning may have changed: read
it), "not converted" (left as it was, why it will not run, and what to use instead).
"""

import dataclasses

from tensorflow.tools.compatibility import ast_edits

CHANGED, CHECK, NOT_CONVERTED = "changed", "check", "not converted"
KINDS = (CHANGED, CHECK, NOT_CONVERTED)


@dataclasses.dataclass(frozen=True, order=True)
class Entry:
    """One report line: at `line`:`col` of the input (both from 1), a `kind` of edit."""

    line: int
    col: int
    kind: str
    message: str


def entry_from_log(severity, line, col, message):
    """The report entry for one log of TensorFlow's upgrade visitor (`col` from 0), on one line."""
    message = " ".join(message.split())
    if severity == ast_edits.ERROR:
        kind = NOT_CONVERTED
    elif severity == ast_edits.WARNING or "requires manual check" in message:
        kind = CHECK
    else:
        kind = CHANGED
    return Entry(line, col + 1, kind, message)


@dataclasses.dataclass
class Report:
    """What the upgrade of one file changed, what to check, and what it could not convert and why."""

    filename: str
    entries: list

    def of_kind(self, kind):
        return [entry for entry in self.entries if entry.kind == kind]

    @property
    def changed(self):
        return self.of_kind(CHANGED)

    @property
    def checks(self):
        return self.of_kind(CHECK)

    @property
    def not_converted(self):
        return self.of_kind(NOT_CONVERTED)

    def __str__(self):
        lines = [f"{self.filename}:{e.line}:{e.col}: {e.kind}: {e.message}" for e in self.entries]
        counts = ", ".join(f"{len(self.of_kind(kind))} {kind}" for kind in KINDS)
        return "\n".join(lines + [f"{self.filename}: {counts}"])


def truthful(entries, lines_changed, statement_span):
    """The entries, each "changed" one on a line the upgrade really changed, and every changed statement named.

    TensorFlow logs an edit where its node starts (a call's first line), which may be a line before the
    one that changed; such an entry moves to the first changed line of its statement, and an entry whose
    statement did not change at all is dropped. A statement changed with no entry (an edit no rule logged)
    gets one, so that the report names every statement the upgrade changed (pointing to TensorFlow's check
    on that statement where it logged the edit as one, `dataset.make_one_shot_iterator()` for instance).

    Args:
        entries: Entry objects.
        lines_changed: {input line: column of its first change} (`diff.LineMap.changed`).
        statement_span: function, input line -> (first, last) line of the innermost statement holding it.
    """
    kept = set()
    for entry in entries:
        if entry.kind == CHANGED and entry.line not in lines_changed:
            line = next(
                (line for line in range(entry.line + 1, statement_span(entry.line)[1] + 1) if line in lines_changed),
                None,
            )
            if line is None:
                continue
            entry = dataclasses.replace(entry, line=line, col=lines_changed[line])
        kept.add(entry)
    named = {statement_span(entry.line) for entry in kept if entry.kind == CHANGED}
    checks = {statement_span(entry.line): entry.line for entry in sorted(entries) if entry.kind == CHECK}
    for line, col in sorted(lines_changed.items()):
        span = statement_span(line)
        if span not in named:
            named.add(span)
            why = f"as its check on line {checks[span]} says" if span in checks else "which logged no reason"
            kept.add(Entry(line, col, CHANGED, f"rewritten by TensorFlow's upgrader, {why}"))
    return sorted(kept)
