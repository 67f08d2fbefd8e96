"""`tfstate upgrade`: rewrite a TF1 program so that it runs on current TensorFlow (docs/upgrade.md has it all).

TensorFlow's own `tf_upgrade_v2` turns TF1 RNN code into `tf.compat.v1.nn.rnn_cell.*` names that raise
"not available with Keras 3", cannot follow `from tensorflow.contrib import rnn` or `import tensorflow as tf1`,
and leaves summaries and flags in forms that fail in a graph-mode program. This package runs TensorFlow's
upgrade visitor (`tensorflow.tools.compatibility`), reading every name through the program's aliases, with
tfstate's rules laid over TensorFlow's:

    TF1 module                                      tfstate module    (a name X converts when X is in its __all__)
    tf.contrib.rnn, tf.nn.rnn_cell, tf.compat.v1.nn.rnn_cell                         ->  tfstate.rnn_cell
    tf.contrib.cudnn_rnn                                                             ->  tfstate.cudnn_rnn
    tf.contrib.seq2seq                                                               ->  tfstate.seq2seq
    tf.contrib.legacy_seq2seq                                                        ->  tfstate.legacy_seq2seq
    tf.layers, tf.compat.v1.layers, tf.contrib.layers                                ->  tfstate.layers
    tf.nn.dynamic_rnn, tf.nn.bidirectional_dynamic_rnn  ->  tfstate.dynamic_rnn, tfstate.bidirectional_dynamic_rnn
    tf.summary.*, tf.logging.*, tf.flags.*, tf.app.*    ->  their tf.compat.v1 forms
    x.shape[i].value                                    ->  tf.compat.v1.dimension_value(x.shape[i])
    tf.Variable                                         ->  tf.compat.v1.Variable, where TF1 semantics are needed
    everything else                                     ->  TensorFlow's rules (tf.Session -> tf.compat.v1.Session)

then removes the TensorFlow imports the upgrade made dead and adds `import tfstate` and
`tf.compat.v1.disable_eager_execution()` where needed. What cannot run is left as it was and reported
'not converted', with why and what to use instead. Every output is parsed before it is written.

    new_text, report = upgrade_source(text, filename="<string>")
    report = upgrade_file("IN.py", "OUT.py")        # same path: in place
    print(report)                                    # one line per edit, `file:line:col: kind: message`

Modules: tables (where names go), names (the program's aliases), rules (TensorFlow's spec with tfstate's
rules), visitor (the alias-aware upgrade visitor), pieces (the program cut into top-level statements, so
time stays linear), imports (dead imports removed), unconverted and reasons (what is left, and why),
additions (lines added), diff and report (the report, checked against the real text), source
(`upgrade_source`), files (safe reading and writing), cli (the command line).
"""

from tfstate.upgrade.cli import configure, run
from tfstate.upgrade.errors import UpgradeError
from tfstate.upgrade.files import MAX_INPUT_BYTES, upgrade_file
from tfstate.upgrade.report import CHANGED, CHECK, KINDS, NOT_CONVERTED, Entry, Report
from tfstate.upgrade.source import MAX_INPUT_CHARS, upgrade_source

__all__ = [
    "upgrade_source",
    "upgrade_file",
    "UpgradeError",
    "configure",
    "run",
    "Report",
    "Entry",
    "CHANGED",
    "CHECK",
    "NOT_CONVERTED",
    "KINDS",
    "MAX_INPUT_BYTES",
    "MAX_INPUT_CHARS",
]
