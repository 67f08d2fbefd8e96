"""A program cut into runs of whole top-level statements, each upgraded by TensorFlow's machinery on its own.

pasta, the parser and printer under TensorFlow's upgrader, takes time that grows with the square of the text
it is given: its `TokenGenerator.peek_conditional` copies the rest of the token list at every block, slice and
optional token, and its `Printer` adds each token to a string attribute (a copy each time), so one 360 KB file
took 16 s and a 4.7 MB one did not finish. Here pasta parses with a token generator that looks ahead by index
and prints into a list of chunks, and each piece (about PIECE_CHARS of whole top-level statements) is parsed,
upgraded and compared on its own, so the whole upgrade takes time in proportion to the file's size.
The program's aliases (`names.Names`) are read from the whole file first; a piece needs nothing from the others.
"""

import ast
import collections
import contextlib
import dataclasses
import sys

from pasta.base import annotate, ast_utils, codegen, token_generator
from pasta.base import formatting as fmt

from tfstate.upgrade.errors import UpgradeError
from tfstate.upgrade.names import loaded_names, maximal_dotted_names
from tfstate.upgrade.visitor import RuleVisitor

PIECE_CHARS = 2000


@dataclasses.dataclass
class Piece:
    """Input lines `first_line`.. (from 1) and, once upgraded: TensorFlow's log, the dotted names the upgraded
    piece reads [(input line or None for a name the upgrade wrote, col, "a.b.c")], the names it reads
    {name: [input lines]}, and its upgraded text, or its pasta tree where its imports are still to be tidied."""

    first_line: int
    lines: list
    statements: list  # the input's top-level statements in these lines
    tree: ast.AST = None
    text: str = None
    log: list = dataclasses.field(default_factory=list)
    dotted: list = dataclasses.field(default_factory=list)
    loaded: dict = dataclasses.field(default_factory=dict)

    @property
    def offset(self):
        """Input lines before this piece (add it to a line of `tree` to get the input line)."""
        return self.first_line - 1

    def holds(self, line):
        return self.first_line <= line < self.first_line + len(self.lines)

    def upgrade(self, spec, names, filename, keep_tree):
        """Parses the piece with pasta and runs the upgrade visitor over it; keeps the tree only if `keep_tree`
        (pasta's trees take about 1 GB per MB of program), else only the upgraded text."""
        with _failures_named(filename, self):
            tree = _pasta_parse("".join(self.lines))
            visitor = RuleVisitor(spec, names, self.offset)
            visitor.visit(tree)
        self.log = visitor.log
        nodes = list(ast.walk(tree))
        self.dotted = [
            (self.offset + node.lineno if hasattr(node, "lineno") else None, getattr(node, "col_offset", 0), name)
            for node, name in maximal_dotted_names(nodes)
        ]
        self.loaded = loaded_names(nodes, self.offset)
        if keep_tree:
            self.tree = tree
        else:
            self.text = self.dump(filename, tree)

    def dump(self, filename, tree=None):
        """The upgraded text of the piece."""
        if self.text is not None:
            return self.text
        with _failures_named(filename, self):
            return _pasta_dump(tree or self.tree)

    def deepest_statement(self):
        """The line of the piece's most deeply nested top-level statement (where recursion gives out)."""

        def depth(root):
            deepest, stack = 0, [(root, 1)]
            while stack:
                node, level = stack.pop()
                deepest = max(deepest, level)
                stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
            return deepest

        return max(self.statements, key=depth).lineno if self.statements else self.first_line


class _LookAheadByIndex(token_generator.TokenGenerator):
    """pasta's token generator, finding the next matching token without copying the rest of the list."""

    def peek_conditional(self, condition):
        for index in range(self._i + 1, self._len):
            if condition(self._tokens[index]):
                return self._tokens[index]
        return None


class _Annotator(annotate.AstAnnotator):
    def __init__(self, source):  # AstAnnotator's, with the linear token generator
        annotate.BaseVisitor.__init__(self)
        self.tokens = _LookAheadByIndex(source)


def _pasta_parse(source):
    """`pasta.parse(source)`, in time linear in the source's length."""
    tree = ast_utils.parse(source)
    _Annotator(source).visit(tree)
    return tree


class _Chunks:
    """Text built with `+=` in time linear in its length (`str` attributes are copied at every `+=`)."""

    def __init__(self):
        self._chunks = []

    def __iadd__(self, text):
        self._chunks.append(text)
        return self

    def __str__(self):
        return "".join(self._chunks)


def _pasta_dump(tree):
    """`pasta.dump(tree)`, in time linear in the text's length: pasta's `codegen.to_str`, printing into _Chunks."""
    printer = codegen.Printer()
    printer.code = _Chunks()
    indents = collections.Counter(filter(None, (fmt.get(node, "indent_diff") for node in ast.walk(tree))))
    if indents:
        printer.set_default_indent_diff(max(indents, key=indents.get))  # the program's most common indent
    printer.visit(tree)
    return str(printer.code)


@contextlib.contextmanager
def _failures_named(filename, piece):
    """Turns a failure of TensorFlow's upgrader on a piece into an UpgradeError naming the statement."""
    try:
        yield
    except RecursionError:
        raise UpgradeError(
            f"{filename}:{piece.deepest_statement()}: the statement starting here nests expressions more deeply "
            f"than TensorFlow's upgrader can follow (Python's recursion limit is {sys.getrecursionlimit()}); "
            "split its long expressions into smaller ones and upgrade again."
        ) from None
    except Exception as error:  # pasta's own errors have no common base; name the place and the error
        raise UpgradeError(
            f"{filename}:{piece.first_line}: TensorFlow's upgrader failed on the statements "
            f"starting here ({type(error).__name__}: {error})."
        ) from None


def cut(tree, lines):
    """The program's lines as Pieces: runs of whole top-level statements of about PIECE_CHARS characters."""
    starts, groups = [1], [[]]
    size, previous_end = 0, 0
    for statement in tree.body:
        first = min([statement.lineno] + [d.lineno for d in getattr(statement, "decorator_list", [])])
        if first > previous_end and size >= PIECE_CHARS:
            starts.append(first)
            groups.append([])
            size = 0
        groups[-1].append(statement)
        size += sum(len(line) for line in lines[previous_end : statement.end_lineno])
        previous_end = statement.end_lineno
    ends = [start - 1 for start in starts[1:]] + [len(lines)]
    return [
        Piece(start, lines[start - 1 : end], group) for start, end, group in zip(starts, ends, groups) if start <= end
    ]


def statement_spans(tree):
    """A function: input line -> (first, last) line of the innermost statement holding it ((line, line) if none).

    Built once for the whole program (inner statements written over outer ones), so each lookup is a dict read.
    """
    spans = {}
    statements = [node for node in ast.walk(tree) if isinstance(node, ast.stmt)]
    for node in sorted(statements, key=lambda node: node.end_lineno - node.lineno, reverse=True):
        spans.update(dict.fromkeys(range(node.lineno, node.end_lineno + 1), (node.lineno, node.end_lineno)))
    return lambda line: spans.get(line, (line, line))
