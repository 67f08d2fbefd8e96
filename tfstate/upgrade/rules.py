"""TensorFlow's v1 -> v2 change spec with tfstate's rules laid over it.

`new_name(name)` decides where a TF1 API name goes, first rule that applies:

    tfstate's tables (tables.MODULES, tables.FUNCTIONS)   tf.contrib.rnn.LSTMCell   -> tfstate.rnn_cell.LSTMCell
    a module used as a value (tables.VALUE_MODULES)       rnn_cell = tf.nn.rnn_cell -> rnn_cell = tfstate.rnn_cell
    modules that moved whole (tables.WHOLE_MODULES)       tf.flags.FLAGS            -> tf.compat.v1.flags.FLAGS
    TF1 summaries (tables.SUMMARY_NAMES)                  tf.summary.scalar         -> tf.compat.v1.summary.scalar
    contrib aliases of core names (CONTRIB_CORE_NAMES)    tf.contrib.framework.get_global_step
                                                                  -> tf.compat.v1.train.get_global_step
    TensorFlow's own renames                              tf.Session                -> tf.compat.v1.Session
        except where they lead into a module that fails on current TensorFlow (tf.compat.v1.nn.rnn_cell.X
        for a cell tfstate lacks): then the name is left as it was, and reported.

TensorFlow's argument rules and warnings do not apply to names tfstate takes over, its notices about
tf.contrib and tf.flags are dropped (what is left is reported by `unconverted`), and its "the TF1 summary API
cannot be migrated" warnings are dropped because the tf.compat.v1.summary forms run in graph mode.

TensorFlow's rules that move a call to its tf.compat.v1 form when an argument TensorFlow 2 no longer honours is
given also move it when the argument is left out and TF1's default is such a value: TensorFlow's leave those
calls, which then run with TensorFlow 2's behaviour (tf.nn.ctc_beam_search_decoder(logits, lengths) merged
repeated labels in TF1 and does not in TF2; tf.while_loop(c, b, [x]) returned x in TF1 and [x] in TF2).
"""

import ast
import functools
import inspect

import tensorflow as tf
from tensorflow.tools.compatibility import ast_edits, tf_upgrade_v2

from tfstate.upgrade.tables import (
    CONTRIB_CORE_NAMES,
    MODULES,
    SUMMARY_NAMES,
    VALUE_MODULES,
    in_module,
    module_rename,
    tfstate_name,
)

_SUMMARY_RENAMES = {f"tf.summary.{name}": f"tf.compat.v1.summary.{name}" for name in SUMMARY_NAMES}


class TfstateChangeSpec(tf_upgrade_v2.TFAPIChangeSpec):
    """TensorFlow's change spec for one program, with tfstate's rules (see the module docstring).

    Args:
        tensorflow_rules: False for programs that import only `tensorflow.compat.v1` (already TF1 code on TF2):
            TensorFlow's own rules are off there, as in tf_upgrade_v2; tfstate's stay on.
    """

    def __init__(self, tensorflow_rules=True):
        super().__init__()
        if not tensorflow_rules:
            for table in (
                "function_handle",
                "function_reorders",
                "function_keyword_renames",
                "symbol_renames",
                "function_warnings",
                "function_arg_warnings",
                "function_transformers",
            ):
                setattr(self, table, {})
        # never edit TF's shared table
        self.symbol_renames = {**self.symbol_renames, **_SUMMARY_RENAMES, **CONTRIB_CORE_NAMES}
        for table in (
            "function_transformers",
            "function_reorders",
            "function_keyword_renames",
            "function_arg_warnings",
        ):
            setattr(self, table, {name: rule for name, rule in getattr(self, table).items() if not self.is_ours(name)})
        self.function_transformers = {
            name: _keeping_tf1_default(name, rule) for name, rule in self.function_transformers.items()
        }
        self.function_warnings = {
            name: warning
            for name, warning in self.function_warnings.items()
            if not (self.is_ours(name) or name.rpartition(".")[0] in MODULES or in_module(name, "tf.summary"))
        }
        self.module_deprecations = {
            name: warning
            for name, warning in self.module_deprecations.items()
            if not (in_module(name, "tf.contrib") or module_rename(name))
        }

    @staticmethod
    def is_ours(name):
        """Whether tfstate's rules, not TensorFlow's, decide what `name` becomes."""
        return bool(tfstate_name(name) or module_rename(name))

    def new_name(self, name, whole_value=True):
        """The TF API or tfstate name that replaces the TF1 API name `name`, or None to leave it as it is.

        `whole_value`: `name` is the whole expression, not the start of a longer dotted name.
        """
        ours = tfstate_name(name) or (whole_value and VALUE_MODULES.get(name)) or module_rename(name)
        if ours:
            return ours
        theirs = self.symbol_renames.get(name)
        if theirs and theirs.rpartition(".")[0] in MODULES:  # e.g. tf.contrib.rnn.X -> tf.compat.v1.nn.rnn_cell.X
            return tfstate_name(theirs)
        return theirs

    def preprocess(self, root_node, after_compat_v1_upgrade=False):
        """Nothing: the program's imports are read by `names.Names` (TF's preprocess turns its rules off for
        `import tensorflow` and `import tensorflow.compat.v1 as tf`, which tfstate handles as aliases)."""
        return root_node, [], []

    def clear_preprocessing(self):
        pass


def _keeping_tf1_default(name, rule):
    """`rule`, which moves a call of `name` to tf.compat.v1 when its argument is given with a value TensorFlow 2
    does not honour, made to move it also when the argument is left out and TF1's default is such a value."""
    if not (isinstance(rule, functools.partial) and rule.func is tf_upgrade_v2._rename_if_arg_found_transformer):
        return rule
    arg_name, ok = rule.keywords["arg_name"], rule.keywords["arg_ok_predicate"]
    try:
        tf1_function = functools.reduce(getattr, ["compat", "v1"] + name.split(".")[1:], tf)
        parameter = inspect.signature(tf1_function).parameters.get(arg_name)
    except (AttributeError, TypeError, ValueError):  # no TF1 form to read a default from: TensorFlow's rule stands
        return rule
    if parameter is None or parameter.default is inspect.Parameter.empty or ok(ast.Constant(parameter.default)):
        return rule

    def transformer(parent, node, full_name, written, logs):
        if ast_edits.get_arg_value(node, arg_name)[0]:
            return rule(parent, node, full_name, written, logs)
        new_name = full_name.replace("tf.", "tf.compat.v1.", 1)
        node.func = ast_edits.full_name_node(new_name)
        logs.append(
            (
                ast_edits.INFO,
                node.lineno,
                node.col_offset,
                f"Renamed {full_name!r} to {new_name!r}: the call leaves out {arg_name}, whose TF1 default "
                f"({parameter.default!r}) TensorFlow 2's {full_name} does not honour",
            )
        )
        return node

    return transformer
