"""`tfstate upgrade` rules: tfstate's tables, every import spelling, TF1 forms that run, and what is reported.

Programs that run after the upgrade are in test_upgrade_programs.py; files, limits and the command line in
test_upgrade_files.py.
"""

import re
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import tfstate
from tfstate.upgrade import CHANGED, CHECK, NOT_CONVERTED, upgrade_source
from tfstate.upgrade.reasons import REPLACEMENTS, exists_in_tensorflow
from tfstate.upgrade.tables import CONTRIB_CORE_NAMES, FUNCTIONS, MODULES, public_names


def _source(text):
    return textwrap.dedent(text).lstrip()


def _upgrade(text):
    new_text, report = upgrade_source(_source(text), "p.py")
    return new_text, [(e.line, e.kind, e.message) for e in report.entries]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_name_in_a_tfstate_modules_all_converts_from_each_tf1_module_mapped_to_it(module):
    home = MODULES[module]
    names = public_names(home)
    text = "import tensorflow as tf\n" + "".join(f"x{i} = {module}.{name}\n" for i, name in enumerate(names))
    new_text, report = upgrade_source(text)
    assert new_text == "import tensorflow as tf\n" + "import tfstate\n" * bool(names) + "".join(
        f"x{i} = {home}.{name}\n" for i, name in enumerate(names)
    )
    assert not report.not_converted


@pytest.mark.parametrize("target", sorted(set(MODULES.values()) | set(FUNCTIONS.values())))
def test_every_tfstate_name_the_upgrader_writes_is_reachable_after_a_plain_import_tfstate(target):
    # an upgraded program only adds `import tfstate`; the lazy package must serve `tfstate.<first name>` itself
    first = target.split(".")[1]
    assert first in tfstate.__all__, (
        f"{target} is written by tfstate upgrade but tfstate.{first} is not in tfstate.__all__"
    )


def test_a_name_added_to_a_tfstate_modules_all_converts_with_no_change_to_the_upgrader(monkeypatch):
    text = _source("""
        import tensorflow as tf
        from tensorflow.contrib import seq2seq
        a = tf.contrib.seq2seq.sequence_loss(logits, targets, weights)
        b = seq2seq.sequence_loss(logits, targets, weights)
    """)
    monkeypatch.setattr(tfstate.seq2seq, "__all__", [])
    new_text, report = upgrade_source(text)
    assert new_text == "import tensorflow as tf\n" + text.split("\n", 1)[1]
    assert [e.line for e in report.not_converted] == [2, 3, 4]
    assert "tfstate.seq2seq has no sequence_loss" in report.not_converted[1].message

    monkeypatch.setattr(tfstate.seq2seq, "__all__", ["sequence_loss"])
    new_text, report = upgrade_source(text)
    assert new_text == _source("""
        import tensorflow as tf
        import tfstate
        a = tfstate.seq2seq.sequence_loss(logits, targets, weights)
        b = tfstate.seq2seq.sequence_loss(logits, targets, weights)
    """)
    assert not report.not_converted


def test_contrib_rnn_functions_become_their_tf2_compat_v1_forms_which_exist():
    new_text, _ = _upgrade("""
        import tensorflow as tf
        a = tf.contrib.rnn.static_rnn(cell, inputs, dtype=tf.float32)
        b = tf.contrib.rnn.static_bidirectional_rnn(fw, bw, inputs, dtype=tf.float32)
        c = tf.contrib.rnn.static_state_saving_rnn(cell, inputs, saver, "state")
        d = tf.contrib.framework.nest.flatten(state)
    """)
    for name in (
        "tf.compat.v1.nn.static_rnn",
        "tf.compat.v1.nn.static_bidirectional_rnn",
        "tf.compat.v1.nn.static_state_saving_rnn",
        "tf.nest.flatten",
    ):
        assert f" = {name}(" in new_text and exists_in_tensorflow(name)


@pytest.mark.parametrize("name", sorted(CONTRIB_CORE_NAMES))
def test_contrib_framework_aliases_of_core_functions_become_their_compat_v1_forms_which_exist(name):
    new_text, report = upgrade_source(f"import tensorflow as tf\nx = {name}()\n")
    assert new_text == f"import tensorflow as tf\nx = {CONTRIB_CORE_NAMES[name]}()\n"
    assert [e.kind for e in report.entries] == [CHANGED] and exists_in_tensorflow(CONTRIB_CORE_NAMES[name])


def test_upgraded_get_or_create_global_step_makes_the_step_an_optimizer_counts():
    new_text, _ = _upgrade("""
        import tensorflow as tf
        w = tf.Variable(1.0)
        step = tf.contrib.framework.get_or_create_global_step()
        train_op = tf.train.GradientDescentOptimizer(0.1).minimize(w * w, global_step=step)
    """)
    graph, scope = tf.Graph(), {}
    with graph.as_default():
        exec(new_text, scope)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for _ in range(3):
                session.run(scope["train_op"])
            assert session.run(tf.compat.v1.train.get_global_step()) == 3


def test_a_call_leaving_out_an_argument_whose_tf1_default_tf2_ignores_becomes_compat_v1_and_others_are_left():
    new_text, entries = _upgrade("""
        import tensorflow as tf
        a = tf.nn.ctc_beam_search_decoder(logits, lengths)
        b = tf.nn.ctc_beam_search_decoder(logits, lengths, merge_repeated=False)
        c = tf.while_loop(cond, body, [x])
        d = tf.while_loop(cond, body, [x], return_same_structure=True)
        e = tf.zeros_like(x)
    """)
    assert new_text.splitlines()[1:] == [
        "a = tf.compat.v1.nn.ctc_beam_search_decoder(inputs=logits, sequence_length=lengths)",
        "b = tf.nn.ctc_beam_search_decoder(inputs=logits, sequence_length=lengths)",
        "c = tf.compat.v1.while_loop(cond=cond, body=body, loop_vars=[x])",
        "d = tf.while_loop(cond=cond, body=body, loop_vars=[x])",
        "e = tf.zeros_like(x)",
    ]
    [why_a] = [message for line, _, message in entries if line == 2 and "Renamed" in message]
    assert "leaves out merge_repeated, whose TF1 default (True)" in why_a


def test_upgraded_ctc_beam_search_and_while_loop_keep_tf1_results():
    # frames spelling 3, blank, 3: TF1's beam search emitted [3] (merge_repeated=True by default), TF2's [3, 3];
    # TF1's while_loop over one loop variable returned the tensor, TF2's a list holding it
    new_text, _ = _upgrade("""
        import numpy as np
        import tensorflow as tf
        frames = np.full([3, 1, 5], 0.01, dtype=np.float32)
        frames[0, 0, 3] = frames[1, 0, 4] = frames[2, 0, 3] = 1.0
        decoded, _ = tf.nn.ctc_beam_search_decoder(tf.log(frames), [3], beam_width=4)
        count = tf.while_loop(lambda i: i < 3, lambda i: i + 1, [tf.constant(0)])
    """)
    graph, scope = tf.Graph(), {}
    with graph.as_default():
        exec(new_text, scope)
        with tf.compat.v1.Session() as session:
            assert list(session.run(scope["decoded"][0].values)) == [3]
            assert session.run(scope["count"]) == 3


def test_upgraded_static_state_saving_rnn_carries_a_tfstate_cells_state_across_runs():
    # TF1 code: the state saver keeps the state in variables; two runs over two chunks equal one static_rnn
    # over the whole stream (the oracle), run on the upgraded code's tf.compat.v1 form with a tfstate cell.
    new_text, _ = _upgrade("""
        import tensorflow as tf

        class Saver(object):
            def __init__(self):
                self.kept = {}
            def state(self, name):
                return self.kept.setdefault(name, tf.Variable(tf.zeros([2, 3]), trainable=False))
            def save_state(self, name, value):
                return tf.assign(self.kept[name], value)

        chunk = tf.placeholder(tf.float32, [2, 2, 4])
        whole = tf.placeholder(tf.float32, [2, 4, 4])
        cell = tf.contrib.rnn.LSTMCell(3)
        saved, _ = tf.contrib.rnn.static_state_saving_rnn(cell, tf.unstack(chunk, axis=1), Saver(), ("c", "h"))
        once, _ = tf.contrib.rnn.static_rnn(cell, tf.unstack(whole, axis=1), dtype=tf.float32)
    """)
    assert "saved, _ = tf.compat.v1.nn.static_state_saving_rnn(cell, " in new_text
    stream = np.random.RandomState(0).randn(2, 4, 4)
    with tf.Graph().as_default():
        namespace = {}
        exec(compile(new_text.replace("tf.compat.v1.disable_eager_execution()\n", ""), "upgraded", "exec"), namespace)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            first = sess.run(namespace["saved"][-1], {namespace["chunk"]: stream[:, :2]})
            second = sess.run(namespace["saved"][-1], {namespace["chunk"]: stream[:, 2:]})
            once = sess.run(namespace["once"], {namespace["whole"]: stream})
    np.testing.assert_allclose(first, once[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(second, once[3], rtol=1e-5, atol=1e-6)


def test_a_name_tfstate_cannot_convert_under_an_alias_is_reported_once_at_its_line_and_its_import_stays():
    new_text, entries = _upgrade("""
        import tensorflow as tf
        from tensorflow.contrib import rnn
        a = rnn.LSTMCell(3)
        b = rnn.GridLSTMCell(3), rnn.GridLSTMCell(4)
    """)
    assert new_text == _source("""
        import tensorflow as tf
        import tfstate
        from tensorflow.contrib import rnn
        a = tfstate.rnn_cell.LSTMCell(3)
        b = rnn.GridLSTMCell(3), rnn.GridLSTMCell(4)
    """)
    assert entries == [
        (1, CHANGED, "added `import tfstate` after line 1: the program now uses tfstate names"),
        (
            2,
            NOT_CONVERTED,
            "import of tensorflow.contrib.rnn: tf.contrib was removed in TensorFlow 2; 'rnn' is still used (line 4)",
        ),
        (3, CHANGED, "Renamed 'rnn.LSTMCell' (tf.contrib.rnn.LSTMCell) to 'tfstate.rnn_cell.LSTMCell'"),
        (
            4,
            NOT_CONVERTED,
            "rnn.GridLSTMCell (tf.contrib.rnn.GridLSTMCell): tf.contrib was removed in TensorFlow 2, "
            "and tfstate.rnn_cell has no GridLSTMCell; port it by hand",
        ),
    ]


def test_a_name_bound_to_a_tensorflow_module_and_to_something_else_is_left_and_reported():
    text = _source("""
        import tensorflow as tf
        from tensorflow.contrib import rnn
        rnn = None
        cell = rnn.LSTMCell(3)
    """)
    new_text, entries = _upgrade(text)
    assert new_text == text
    assert (
        entries[0][:2] == (2, NOT_CONVERTED)
        and "'rnn' is bound to tf.contrib.rnn here and to something else on line 3" in entries[0][2]
    )


@pytest.mark.parametrize(
    "spelling, expected",
    [
        (
            "import tensorflow\nimport tensorflow.contrib.rnn\ncell = tensorflow.contrib.rnn.LSTMCell(3)\n"
            "s = tensorflow.Session()\n",
            "import tensorflow\nimport tfstate\ntensorflow.compat.v1.disable_eager_execution()\nimport tensorflow\n"
            "cell = tfstate.rnn_cell.LSTMCell(3)\ns = tensorflow.compat.v1.Session()\n",
        ),
        (
            "import tensorflow.compat.v1 as tf\ntf.disable_v2_behavior()\ncell = tf.nn.rnn_cell.LSTMCell(3)\n"
            "gru = tf.contrib.rnn.GRUCell(3)\nx = tf.placeholder(tf.float32)\n",
            "import tensorflow.compat.v1 as tf\nimport tfstate\ntf.disable_v2_behavior()\n"
            "cell = tfstate.rnn_cell.LSTMCell(3)\ngru = tfstate.rnn_cell.GRUCell(3)\nx = tf.placeholder(tf.float32)\n",
        ),
        (
            "import tensorflow as tf\nfrom tensorflow import flags, logging\nflags.DEFINE_integer('n', 1, 'n')\n"
            "logging.info('x')\n",
            "import tensorflow as tf\nfrom tensorflow.compat.v1 import flags, logging\n"
            "flags.DEFINE_integer('n', 1, 'n')\nlogging.info('x')\n",
        ),
        (
            "import tensorflow as tf\nlogging = tf.logging\nFLAGS = tf.app.flags.FLAGS\nlogging.warn(FLAGS.n)\n",
            "import tensorflow as tf\nlogging = tf.compat.v1.logging\nFLAGS = tf.compat.v1.app.flags.FLAGS\n"
            "logging.warn(FLAGS.n)\n",
        ),
        (
            '"""Doc."""\nfrom __future__ import print_function\nfrom tensorflow.contrib.rnn import static_rnn\n'
            "out = static_rnn(cell, xs, dtype=None)\n",
            '"""Doc."""\nfrom __future__ import print_function\nimport tensorflow as tf\n'
            "out = tf.compat.v1.nn.static_rnn(cell, xs, dtype=None)\n",
        ),
    ],
    ids=["unaliased", "compat_v1", "from_tensorflow_import_flags", "logging_and_flags_aliases", "no_tf_import"],
)
def test_import_spelling_is_upgraded_to_running_code(spelling, expected):
    new_text, report = upgrade_source(spelling)
    assert new_text == expected
    assert not report.not_converted


@pytest.mark.parametrize(
    "tf1, tf2",
    [
        ("tf.summary.scalar", "tf.compat.v1.summary.scalar"),
        ("tf.summary.histogram", "tf.compat.v1.summary.histogram"),
        ("tf.summary.image", "tf.compat.v1.summary.image"),
        ("tf.summary.audio", "tf.compat.v1.summary.audio"),
        ("tf.summary.text", "tf.compat.v1.summary.text"),
        ("tf.summary.merge", "tf.compat.v1.summary.merge"),
        ("tf.summary.merge_all", "tf.compat.v1.summary.merge_all"),
        ("tf.summary.FileWriter", "tf.compat.v1.summary.FileWriter"),
        ("tf.flags.DEFINE_string", "tf.compat.v1.flags.DEFINE_string"),
        ("tf.flags.FLAGS.batch_size", "tf.compat.v1.flags.FLAGS.batch_size"),
        ("tf.app.run", "tf.compat.v1.app.run"),
        ("tf.logging.vlog", "tf.compat.v1.logging.vlog"),
        ("tf.logging", "tf.compat.v1.logging"),
    ],
)
def test_tf1_summaries_flags_logging_and_app_become_their_working_compat_v1_forms(tf1, tf2):
    new_text, report = upgrade_source(f"import tensorflow as tf\nx = {tf1}\n")
    assert new_text == f"import tensorflow as tf\nx = {tf2}\n"
    assert [e.kind for e in report.entries] == [CHANGED] and exists_in_tensorflow(tf2)


def test_static_dimension_values_are_read_with_dimension_value_and_other_shapes_are_left():
    new_text, _ = _upgrade("""
        import tensorflow as tf
        a = x.shape[2].value
        b = x.get_shape()[-1].value * 2
        c = x.get_shape().as_list()[1]
        d = tf.shape(x)[0]
        e = x.get_shape().dims[0].value
    """)
    assert new_text.splitlines()[1:] == [
        "a = tf.compat.v1.dimension_value(x.shape[2])",
        "b = tf.compat.v1.dimension_value(x.get_shape()[-1]) * 2",
        "c = x.get_shape().as_list()[1]",
        "d = tf.shape(x)[0]",
        "e = x.get_shape().dims[0].value",
    ]
    with tf.Graph().as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3, 5])
        assert tf.compat.v1.dimension_value(x.shape[2]) == 5 and tf.compat.v1.dimension_value(x.shape[0]) is None


def test_tf_variable_becomes_compat_v1_where_tf1_arguments_need_it_and_is_left_elsewhere():
    new_text, entries = _upgrade("""
        import tensorflow as tf
        a = tf.Variable(0.0, name="a")
        b = tf.Variable(0.0, collections=["state"])
        c = tf.Variable(0.0, True, ["state"])
    """)
    assert new_text.splitlines()[1:] == [
        'a = tf.Variable(0.0, name="a")',
        'b = tf.compat.v1.Variable(0.0, collections=["state"])',
        'c = tf.compat.v1.Variable(0.0, True, ["state"])',
    ]
    assert [line for line, _, _ in entries] == [3, 4]


@pytest.mark.parametrize(
    "name, why",
    [
        (
            "tf.layers.conv2d",
            f"tfstate.layers has no conv2d (it has {', '.join(public_names('tfstate.layers'))}); use tf.nn.conv2d",
        ),
        ("tf.contrib.layers.flatten", "use tf.reshape(x, [tf.shape(x)[0], -1])"),
        ("tf.contrib.training.HParams", "tf.contrib was removed in TensorFlow 2; use a plain object"),
        (
            "tf.contrib.cudnn_rnn.CudnnParamsFormatConverterLSTM",
            "tfstate.cudnn_rnn has no CudnnParamsFormatConverterLSTM; port it by hand",
        ),
        ("tf.estimator.Estimator", f"it does not exist in TensorFlow {tf.__version__}"),
        ("tf.contrib.lookup.index_table_from_file", "use tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer("),
        ("tf.contrib.metrics.streaming_accuracy", "use tf.compat.v1.metrics.accuracy(labels=labels, predictions="),
        ("tf.contrib.data.Dataset.from_tensor_slices", "tf.contrib was removed in TensorFlow 2; use tf.data.Dataset"),
    ],
)
def test_what_cannot_run_is_left_and_reported_with_the_reason_and_the_replacement(name, why):
    text = f"import tensorflow as tf\nx = {name}(y)\n"
    new_text, report = upgrade_source(text)
    assert new_text == text
    [entry] = report.entries
    assert (entry.line, entry.col, entry.kind) == (2, 5, NOT_CONVERTED)
    assert entry.message.startswith(f"{name}: ") and why in entry.message


@pytest.mark.parametrize(
    "name",
    [
        "index_table_from_tensor",
        "index_to_string_table_from_tensor",
        "index_table_from_file",
        "index_to_string_table_from_file",
    ],
)
def test_the_lookup_tables_the_report_suggests_map_as_tf1s_contrib_lookup_tables_did(name, tmp_path):
    # oracle: TF1's own functions, still in TensorFlow's implementation module
    from tensorflow.python.ops import lookup_ops

    words = ["the", "cat", "sat"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(words) + "\n")
    from_file = name.endswith("_file")
    to_string = "to_string" in name
    queries = [2, 0, 7] if to_string else ["sat", "dog", "the"]
    with tf.Graph().as_default():
        vocabulary = tf.constant(words)
        source = str(path) if from_file else vocabulary
        tf1 = getattr(lookup_ops, name)(source, default_value="UNK") if to_string else getattr(lookup_ops, name)(source)
        code = re.sub(r" \([^()]*\)$", "", REPLACEMENTS[name])  # without the closing remark
        suggested = eval(code, {"tf": tf, "vocabulary": vocabulary, "path": str(path)})
        keys = tf.constant(queries, tf.int64 if to_string else tf.string)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.tables_initializer())
            expected, got = session.run([tf1.lookup(keys), suggested.lookup(keys)])
    np.testing.assert_array_equal(got, expected)


def test_imports_of_modules_tensorflow_2_removed_are_reported_not_converted():
    text = _source("""
        import tensorflow as tf
        from tensorflow.examples.tutorials.mnist import input_data
        from tensorflow.contrib.rnn import *
        mnist = input_data.read_data_sets("MNIST_data", one_hot=True)
    """)
    new_text, entries = _upgrade(text)
    assert new_text == text
    assert [(line, kind) for line, kind, _ in entries] == [(2, NOT_CONVERTED), (3, NOT_CONVERTED)]
    assert (
        "tf.keras.datasets.mnist.load_data()" in entries[0][2]
        and "'input_data' is still used (line 4)" in entries[0][2]
    )
    assert "import the names you use by name" in entries[1][2]


def test_report_moves_an_edit_to_the_line_it_changed_and_has_one_line_per_edit():
    # TensorFlow logs this edit where the call starts (line 2); the text changes on line 3.
    new_text, entries = _upgrade("""
        import tensorflow as tf
        z = tf.nn.softmax_cross_entropy_with_logits(
            labels=y,
            logits=y)
    """)
    assert new_text.splitlines()[2] == "    labels=tf.stop_gradient(y),"
    assert entries == [
        (
            3,
            CHANGED,
            "Changing labels arg of tf.nn.softmax_cross_entropy_with_logits to "
            "tf.stop_gradient(labels). Please check this transformation.",
        )
    ]


def test_tensorflows_manual_check_notes_are_checks_not_changes():
    _, entries = _upgrade("""
        import tensorflow as tf
        w = tf.get_variable("w", [2])
    """)
    assert [kind for _, kind, _ in entries] == [CHANGED, CHECK]
    assert "returns ResourceVariables by default" in entries[1][2]


def test_an_edit_tensorflow_logged_only_as_a_check_is_a_change_pointing_to_that_check():
    new_text, entries = _upgrade("""
        import tensorflow as tf
        batch = dataset.make_one_shot_iterator().get_next()
    """)
    assert new_text.splitlines()[1] == "batch = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()"
    assert [(line, kind) for line, kind, _ in entries] == [(2, CHANGED), (2, CHECK)]
    assert entries[0][2] == "rewritten by TensorFlow's upgrader, as its check on line 2 says"
    assert entries[1][2].startswith("Changing dataset.make_one_shot_iterator()")


def test_graph_mode_is_added_once_and_only_for_sessions_or_placeholders():
    already = "import tensorflow as tf\ntf.compat.v1.disable_v2_behavior()\ns = tf.Session()\n"
    assert "disable_eager_execution" not in upgrade_source(already)[0]
    eager = "import tensorflow as tf\ny = tf.nn.relu(tf.constant(1.0))\n"
    assert upgrade_source(eager)[0] == eager
    once, _ = upgrade_source("import numpy as np\nimport tensorflow as tf\ns = tf.Session()\n")
    assert once == (
        "import numpy as np\nimport tensorflow as tf\ntf.compat.v1.disable_eager_execution()\n"
        "s = tf.compat.v1.Session()\n"
    )
    assert upgrade_source(once)[0] == once  # upgrading an upgraded program changes nothing


def test_tf_tuple_accepts_resource_assign_values_so_assigns_are_left_alone():
    # The finding behind leaving `tf.tuple([v.assign(x), ...])` as it is: on TF 2.21 graph mode the
    # _UnreadVariable that ResourceVariable.assign returns converts to a tensor inside tf.tuple.
    with tf.Graph().as_default():
        variable = tf.compat.v1.Variable([0.0, 0.0], trainable=False)
        assert isinstance(variable, tf.Variable) and "Resource" in type(variable).__name__
        [stored] = tf.tuple([variable.assign([1.0, 2.0])])
        with tf.compat.v1.Session() as sess:
            sess.run(variable.initializer)
            assert sess.run(stored).tolist() == [1.0, 2.0]
            assert sess.run(variable).tolist() == [1.0, 2.0]
