"""Which input lines an upgrade changed, and where each input line went, from the real before/after text.

Built piece by piece (`difflib` on each piece's lines), so it costs time in proportion to the file.
"""

import difflib
import os


class LineMap:
    """Input lines against output lines.

    Attributes:
        changed: {input line: column (from 1) of its first change}: lines replaced or deleted, and lines
            after which lines were inserted (lines from 1).
    """

    def __init__(self):
        self.changed = {}
        self._output_line = {}  # input line -> output line it became (or the output line where it would be)
        self._output_lines = 0

    def add(self, first_line, before, after):
        """Adds one piece: `before` (input lines from `first_line`) became `after`; pieces come in order."""
        if len(before) == len(after):  # the usual case: edits within lines; compare line by line
            opcodes = [
                ("equal" if b == a else "replace", i, i + 1, i, i + 1) for i, (b, a) in enumerate(zip(before, after))
            ]
        else:
            opcodes = difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes()
        for tag, i1, i2, j1, j2 in opcodes:
            for i in range(i1, i2):
                j = min(j1 + i - i1, j2 - 1)  # a deleted line (j1 == j2) maps to the output line before it
                self._output_line[first_line + i] = self._output_lines + j + 1
            if tag == "equal":
                continue
            if tag == "insert":
                line = first_line + max(i1 - 1, 0)
                self.changed.setdefault(line, 1)
                continue
            for i in range(i1, i2):
                j = j1 + i - i1
                self.changed[first_line + i] = _first_difference(before[i], after[j]) if j < j2 else 1
        self._output_lines += len(after)

    def output_line(self, line):
        """The output line that input line `line` became (for a deleted line, the output line before its place)."""
        return self._output_line[line]


def _first_difference(before, after):
    return len(os.path.commonprefix([before, after])) + 1
