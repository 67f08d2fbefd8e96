"""What the names of a program stand for in TensorFlow: the aliases its imports and assignments bind.

    import tensorflow as tf1                      tf1      reads as  tf
    from tensorflow.contrib import rnn            rnn      reads as  tf.contrib.rnn
    from tensorflow.contrib.rnn import GRUCell    GRUCell  reads as  tf.contrib.rnn.GRUCell
    from tensorflow.python.ops import rnn_cell    rnn_cell reads as  tf.nn.rnn_cell
    rnn_cell = tf.nn.rnn_cell                     rnn_cell reads as  tf.nn.rnn_cell
    from tensorflow import flags                  a whole-module alias: its import is re-pointed, its uses stay

A name bound to different things (`rnn` imported from tf.contrib and also assigned) is no alias: its
uses are left as they were and the report says why.
"""

import ast
import collections
import dataclasses
import functools

from tensorflow.tools.compatibility import all_renames_v2

from tfstate.upgrade.tables import VALUE_MODULES, WHOLE_MODULES, api_path, in_module, module_rename


@dataclasses.dataclass(frozen=True)
class ImportAlias:
    """One name a TensorFlow import binds: `from <module> import <name> as <local>` or `import <name> as <local>`."""

    line: int
    col: int
    index: int  # its place in the statement's names
    local: str
    python_path: str  # what is imported: "tensorflow.contrib.rnn" (module + "." + name for a from-import)
    path: str | None  # its TF1 API name, "tf.contrib.rnn"; None when it has none (tensorflow.python.platform...)
    is_from: bool


@functools.lru_cache(maxsize=1)
def _known_modules():
    """TF1 API module names (every proper prefix of a name TF's upgrader renames, and tfstate's tables)."""
    modules = {"tf", "tf.compat.v1", "tf.compat.v2"} | set(VALUE_MODULES) | set(WHOLE_MODULES)
    for name in all_renames_v2.symbol_renames:
        parts = name.split(".")
        modules.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return frozenset(module for module in modules if module.startswith("tf"))


def dotted_name(node):
    """ "a.b.c" for the Name/Attribute chain `a.b.c`, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id] + parts[::-1]) if isinstance(node, ast.Name) else None


def maximal_dotted_names(nodes):
    """(node, "a.b.c") for each longest dotted name read among `nodes` (all of a tree's; `a.b.c` in `a.b.c(x).d`)."""
    inner = {id(node.value) for node in nodes if isinstance(node, ast.Attribute)}
    for node in nodes:
        if isinstance(node, (ast.Attribute, ast.Name)) and id(node) not in inner and isinstance(node.ctx, ast.Load):
            name = dotted_name(node)
            if name:
                yield node, name


def _tensorflow_import(module):
    return module == "tensorflow" or module.startswith("tensorflow.")


class Names:
    """The TensorFlow aliases of one program, and how to write a TF API name in it.

    Attributes:
        aliases: {local name: TF1 API name its uses read as}, e.g. {"tf": "tf", "rnn": "tf.contrib.rnn"}.
        whole_modules: {local name: TF1 module} for aliases of modules that moved whole (tf.logging, tf.flags).
        imports: an ImportAlias for every name a TensorFlow import binds.
        conflicts: {local name: [(line, TF1 name or None)]} for names bound to different things.
        bound: every name the program binds anywhere (imports, assignments, arguments, definitions).
        root: the local name bound to `tensorflow` by an import ("tf"), or None.
        compat_root: the local name bound to `tensorflow.compat.v1` by an import, or None.
        tensorflow_rules: False when the program imports only `tensorflow.compat.v1`/`v2` (already TF1 code
            on TF2, so TensorFlow's own rules stay off, as in tf_upgrade_v2).
        meta_graph: whether the program re-imports graphs with `import_meta_graph`.
        used: {name: [lines]} of every name the program reads.
        imports_tfstate: whether the program has `import tfstate`.
        star_imports: the program's `from tensorflow... import *` statements.
    """

    def __init__(self, tree):
        nodes = list(ast.walk(tree))
        self.imports, self.imports_tfstate, self.star_imports = [], False, []
        bindings = collections.defaultdict(list)  # local -> [(line, TF1 name or None for anything else)]
        alias_assignments = set()
        for node in nodes:
            self._bind_imports(node, bindings)
        self.aliases = self._agreeing(bindings)  # the imports' aliases, to read `rnn_cell = tf.nn.rnn_cell` with
        for node in nodes:
            path = self._module_assignment(node)
            if path:
                bindings[node.targets[0].id].append((node.lineno, path))
                alias_assignments.add(id(node.targets[0]))
        for node in nodes:
            for local, line in _other_bindings(node, alias_assignments):
                bindings[local].append((line, None))
        self.bound = set(bindings)
        self.used = loaded_names(nodes)
        roots = [a.local for a in sorted(self.imports, key=lambda a: a.line) if a.path == "tf" and not a.is_from]
        compat_roots = [a.local for a in self.imports if a.path == "tf.compat.v1" and not a.is_from]
        self.root = "tf" if "tf" in roots else (roots or [None])[0]
        self.compat_root = (compat_roots or [None])[0]
        aliases, self.conflicts = {}, {}
        for local, bound in bindings.items():
            paths = {path for _, path in bound}
            if paths == {None}:
                continue
            if len(paths) == 1 or local == self.root:  # `except ImportError: tf = None` keeps tf an alias
                aliases[local] = "tf" if local == self.root else paths.pop()
            else:
                self.conflicts[local] = sorted(bound, key=lambda b: b[0])
        self.whole_modules = {local: path for local, path in aliases.items() if module_rename(path)}
        self.aliases = {local: path for local, path in aliases.items() if local not in self.whole_modules}
        self.tensorflow_rules = self.root is not None or not any(
            in_module(a.path or "", "tf.compat") for a in self.imports
        )
        self.meta_graph = "import_meta_graph" in self.used or any(
            isinstance(node, ast.Attribute) and node.attr == "import_meta_graph" for node in nodes
        )

    def _bind_imports(self, node, bindings):
        if isinstance(node, ast.Import):
            for index, alias in enumerate(node.names):
                if not _tensorflow_import(alias.name):
                    bindings[alias.asname or alias.name.split(".")[0]].append((node.lineno, None))
                    self.imports_tfstate |= alias.name == "tfstate" and alias.asname in (None, "tfstate")
                    continue
                local = alias.asname or "tensorflow"
                path = api_path(alias.name) if alias.asname else "tf"
                self.imports.append(ImportAlias(node.lineno, node.col_offset, index, local, alias.name, path, False))
                bindings[local].append((node.lineno, path))
        elif isinstance(node, ast.ImportFrom):
            tensorflow = node.level == 0 and node.module and _tensorflow_import(node.module)
            for index, alias in enumerate(node.names):
                local = alias.asname or alias.name
                if alias.name == "*":
                    self.star_imports += [node] if tensorflow else []
                    continue
                if not tensorflow:
                    bindings[local].append((node.lineno, None))
                    continue
                python_path = f"{node.module}.{alias.name}"
                path = api_path(python_path)
                self.imports.append(ImportAlias(node.lineno, node.col_offset, index, local, python_path, path, True))
                bindings[local].append((node.lineno, path))

    @staticmethod
    def _agreeing(bindings):
        return {
            local: paths.pop()
            for local, bound in bindings.items()
            if len(paths := {path for _, path in bound}) == 1 and None not in paths
        }

    def _module_assignment(self, node):
        """The TF1 module that `name = <module>` binds, e.g. `rnn_cell = tf.nn.rnn_cell`; else None."""
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            return None
        value = dotted_name(node.value)
        path = value and self.canonical(value)
        return path if path in _known_modules() else None

    def canonical(self, dotted):
        """The TF1 API name that the dotted name `dotted`, as written in this program, stands for."""
        first, dot, rest = dotted.partition(".")
        name = self.aliases[first] + dot + rest if first in self.aliases else dotted
        return "tf.contrib" + name[len("tf.compat.v1.contrib") :] if in_module(name, "tf.compat.v1.contrib") else name

    def spell(self, name):
        """`name` (`tf.compat.v1.Session`, `tfstate.dynamic_rnn`) as this program writes it (`tf1.compat.v1.Session`).

        A TF name is written under the program's `tensorflow` alias, else under its `tensorflow.compat.v1`
        alias where it fits, else under `tf` (and the upgrade adds `import tensorflow as tf`).
        """
        if not name.startswith("tf."):
            return name
        if self.root:
            return self.root + name[len("tf") :]
        if self.compat_root and in_module(name, "tf.compat.v1"):
            return self.compat_root + name[len("tf.compat.v1") :]
        return name


def _other_bindings(node, alias_assignments):
    """(local name, line) for each binding `node` makes other than an import (targets, arguments, defs)."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)) and id(node) not in alias_assignments:
        yield node.id, node.lineno
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name, node.lineno
    elif isinstance(node, ast.arg):
        yield node.arg, node.lineno
    elif isinstance(node, ast.ExceptHandler) and node.name:
        yield node.name, node.lineno


def loaded_names(nodes, offset=0):
    """{name: [lines]} of every name read among `nodes` (`Name` nodes in Load context), lines plus `offset`.

    Nodes the upgrade made (which have no line) count with no line.
    """
    lines = collections.defaultdict(list)
    for node in nodes:
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            line = getattr(node, "lineno", None)
            lines[node.id] += [line + offset] if line else []
    return lines
