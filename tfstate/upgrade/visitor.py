"""TensorFlow's upgrade visitor, reading every name through the program's aliases and applying tfstate's rules.

TensorFlow's `tf_upgrade_v2` matches names as written (`tf.contrib.rnn.LSTMCell`), so `rnn.LSTMCell` under
`from tensorflow.contrib import rnn`, or anything under `import tensorflow as tf1`, escapes it. This visitor
(a subclass of its `ast_edits._PastaEditVisitor`) reads each dotted name as the TF1 API name it stands for
(`names.Names.canonical`), renames it by `rules.TfstateChangeSpec.new_name`, writes the new name under the
program's own TensorFlow alias, and logs each use site it changed. Two rules rewrite expressions:

    x.shape[2].value, x.get_shape()[i].value   ->  tf.compat.v1.dimension_value(x.shape[2])
    tf.Variable(...)                           ->  tf.compat.v1.Variable(..., use_resource=False)
        (in programs that re-import their graph with import_meta_graph, and where TF1-only arguments are given)
"""

import ast

import pasta
from tensorflow.tools.compatibility import ast_edits

from tfstate.upgrade.names import dotted_name

_V1_VARIABLE_ARGS = ("collections", "use_resource", "expected_shape")  # what tf.Variable (v2) silently ignores


class RuleVisitor(ast_edits._PastaEditVisitor):
    """Upgrades one parsed piece of a program; its log holds (severity, line, col, message) in input lines.

    Args:
        spec: the `rules.TfstateChangeSpec` for this program.
        names: the program's `names.Names`.
        line_offset: lines of the program before this piece.
    """

    def __init__(self, spec, names, line_offset=0):
        super().__init__(spec)
        self._names = names
        self._offset = line_offset

    def add_log(self, severity, lineno, col, msg):  # TF's prints every line; ours keeps them
        self._log.append((severity, lineno + self._offset, col, msg))

    def add_logs(self, logs):
        for log in logs:
            self.add_log(*log)

    def _get_full_name(self, node):
        name = super()._get_full_name(node)
        return self._names.canonical(name) if name else name

    def _maybe_add_warning(self, node, full_name):
        if self._api_change_spec.is_ours(full_name):
            return False
        return super()._maybe_add_warning(node, full_name)

    def _maybe_rename(self, parent, node, full_name):
        whole_value = not (isinstance(parent, ast.Attribute) and parent.value is node)
        new_name = self._api_change_spec.new_name(full_name, whole_value)
        if not new_name:
            return False
        written, spelled = dotted_name(node), self._names.spell(new_name)
        alias = f" ({full_name})" if written != full_name else ""
        self.add_log(ast_edits.INFO, node.lineno, node.col_offset, f"Renamed {written!r}{alias} to {spelled!r}")
        new_node = ast_edits.full_name_node(spelled, node.ctx)
        ast.copy_location(new_node, node)
        pasta.ast_utils.replace_child(parent, node, new_node)
        return True

    def visit_Name(self, node):
        """A bare alias (`LSTMCell`, from `from tensorflow.contrib.rnn import LSTMCell`) is renamed as dotted ones."""
        if isinstance(node.ctx, ast.Load) and node.id in self._names.aliases:
            full_name = self._names.canonical(node.id)
            parent = self._stack[-2]
            if not (isinstance(parent, ast.Attribute) and parent.value is node):
                self._maybe_add_warning(node, full_name)
            self._maybe_rename(parent, node, full_name)
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if not self._maybe_dimension_value(node):
            super().visit_Attribute(node)

    def _maybe_dimension_value(self, node):
        """`x.shape[i].value` -> `tf.compat.v1.dimension_value(x.shape[i])`: TF2 shapes hold ints, not Dimensions."""
        subscript = node.value
        if not (
            node.attr == "value"
            and isinstance(node.ctx, ast.Load)
            and isinstance(subscript, ast.Subscript)
            and _is_static_shape(subscript.value)
        ):
            return False
        function = self._names.spell("tf.compat.v1.dimension_value")
        call = ast.Call(func=ast_edits.full_name_node(function), args=[subscript], keywords=[])
        ast.copy_location(call, node)
        pasta.ast_utils.replace_child(self._stack[-2], node, call)
        self.add_log(
            ast_edits.INFO,
            node.lineno,
            node.col_offset,
            f"Changed '{pasta.dump(subscript)}.value' to '{function}({pasta.dump(subscript)})': TF2 "
            "shapes hold ints (or None), which have no .value",
        )
        self._stack[-1] = call
        self.generic_visit(call)
        return True

    def visit_Call(self, node):
        if self._get_full_name(node.func) == "tf.Variable":
            self._maybe_v1_variable(node)
        super().visit_Call(node)

    def _maybe_v1_variable(self, node):
        """`tf.Variable` -> `tf.compat.v1.Variable` where TF1 semantics are needed (see the module docstring)."""
        v1_args = [k.arg for k in node.keywords if k.arg in _V1_VARIABLE_ARGS]
        if len(node.args) > 2:  # TF1's third positional argument is `collections`, TF2's is `validate_shape`
            v1_args.append("collections")
        if not (v1_args or self._names.meta_graph):
            return
        function = self._names.spell("tf.compat.v1.Variable")
        written = dotted_name(node.func)
        node.func = ast_edits.full_name_node(function)
        if self._names.meta_graph and "use_resource" not in v1_args:
            node.keywords.append(ast.keyword(arg="use_resource", value=ast.Constant(False)))
            message = (
                f"Changed {written!r} to '{function}(..., use_resource=False)': the program re-imports its "
                "graph with import_meta_graph, where a TF1 variable's 'name:0' is its value (a resource "
                "variable's is a handle)"
            )
        else:
            message = (
                f"Changed {written!r} to {function!r}: TensorFlow 2's tf.Variable ignores TF1's "
                f"{', '.join(sorted(set(v1_args)))} argument"
            )
        self.add_log(ast_edits.INFO, node.lineno, node.col_offset, message)


def _is_static_shape(node):
    """Whether `node` is `<expr>.shape` or `<expr>.get_shape()`."""
    if isinstance(node, ast.Call) and not node.args and not node.keywords:
        node = node.func
        return isinstance(node, ast.Attribute) and node.attr == "get_shape"
    return isinstance(node, ast.Attribute) and node.attr == "shape"
