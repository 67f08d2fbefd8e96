"""A keyed stateful SavedModel served in a fresh process (without tfstate): interleaved streams equal each alone."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from conftest import graph_session, randomize_variables

import tfstate

DEPTH, UNITS, STEPS = 3, 4, 5
KEYS = [b"alice", b"bob", b"carol"]

# Runs in a fresh process that never imports tfstate, so loading proves the model needs only core ops.
SERVER = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf

    model_dir, data = sys.argv[1], np.load(sys.argv[2])
    streams, expected = data["streams"], data["expected"]
    keys = [b"alice", b"bob", b"carol"]
    # each request: (rows, step), the rows being streams that are served one step together
    schedule = [([0, 1], 0), ([2], 0), ([0], 1), ([1, 2], 1), ([2, 0], 2), ([1], 2), ([0, 1, 2], 3), ([2, 1, 0], 4)]

    def serve(step, end):
        got = np.zeros_like(expected)
        for rows, t in schedule:
            outputs = step(np.array([keys[r] for r in rows]), streams[rows, t:t + 1], np.array([t == 0] * len(rows)))
            got[rows, t] = outputs[:, 0]
        np.testing.assert_allclose(got, expected, atol=1e-5)
        np.testing.assert_array_equal(end(np.array([b"bob", b"nobody"])), [True, False])

    model = tf.saved_model.load(model_dir)
    assert sorted(model.signatures) == ["end", "peek", "serving_default", "step"], sorted(model.signatures)
    signatures = model.signatures
    step_v2 = lambda k, x, s: signatures["step"](keys=tf.constant(k), inputs=tf.constant(x),
                                                 start=tf.constant(s))["outputs"].numpy()
    try:
        signatures["step"](keys=tf.constant([1.5]), inputs=tf.constant(streams[:1, :1]), start=tf.constant([True]))
        raise AssertionError("float keys were accepted")
    except (TypeError, ValueError, tf.errors.InvalidArgumentError) as error:
        assert "string" in str(error), error
    serve(step_v2, lambda k: signatures["end"](keys=tf.constant(k))["ended"].numpy())
    print("tf.saved_model.load: served")

    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], model_dir)
        def runner(name, output):
            signature = meta.signature_def[name]
            tensor = lambda info: sess.graph.get_tensor_by_name(info.name)
            def run(*args):
                feed = {tensor(signature.inputs[key]): value for key, value in zip(sorted(signature.inputs), args)}
                return sess.run(tensor(signature.outputs[output]), feed)
            return run
        step_v1 = runner("step", "outputs")  # inputs in sorted order: inputs, keys, start
        serve(lambda k, x, s: step_v1(x, k, s), runner("end", "ended"))
    print("loader.load: served")
""")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model folder, data file): a keyed LSTM exported for serving, and each stream's outputs run alone."""
    folder = tmp_path_factory.mktemp("serving")
    rng = np.random.RandomState(7)
    streams = rng.uniform(-1, 1, (len(KEYS), STEPS, DEPTH)).astype(np.float32)
    with graph_session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, None, DEPTH], name="inputs")
        keys = tf.compat.v1.placeholder(tf.string, [None], name="keys")
        cell = tfstate.LSTMCell(UNITS)
        krnn = tfstate.keyed_dynamic_rnn(cell, x, keys, capacity=16)
        head = tfstate.layers.dense(krnn.outputs, 2, name="head")
        alone, _ = tf.compat.v1.nn.dynamic_rnn(cell, x, dtype=tf.float32, scope="rnn")
        alone_head = tfstate.layers.dense(alone, 2, name="head", reuse=True)
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess)
        krnn.state.initialize_if_needed(sess)
        sess.run([krnn.outputs, krnn.keep], {x: streams[:, :2], keys: KEYS})  # the export starts the table empty
        expected = sess.run(alone_head, {x: streams})
        tfstate.serving.export_saved_model(
            sess, str(folder / "model"), krnn, inputs={"inputs": x}, outputs={"outputs": head}
        )
    np.savez(folder / "data.npz", streams=streams, expected=expected)
    return folder / "model", folder / "data.npz"


def _environment():
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    environment.pop("PYTHONPATH", None)  # the server imports TensorFlow and NumPy only
    return environment


def test_served_in_a_fresh_process_interleaved_streams_equal_each_stream_alone_with_both_loaders(exported, tmp_path):
    model, data = exported
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    result = subprocess.run(
        [sys.executable, str(script), str(model), str(data)],
        capture_output=True,
        text=True,
        timeout=240,
        env=_environment(),
        cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert result.stdout.split() == "tf.saved_model.load: served loader.load: served".split()


def test_saved_model_cli_lists_the_step_peek_and_end_signatures(exported):
    model, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    command = [cli] if os.path.exists(cli) else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run(
        command + ["show", "--dir", str(model), "--all"],
        capture_output=True,
        text=True,
        timeout=240,
        env=_environment(),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for name in ("step", "serving_default", "peek", "end"):
        assert f"signature_def['{name}']" in result.stdout
    step = result.stdout.split("signature_def['step']")[1].split("signature_def[")[0]
    for line in ("inputs['keys']", "inputs['start']", "inputs['inputs']", "outputs['outputs']", "DT_STRING"):
        assert line in step


def test_serving_signatures_refuse_inputs_named_like_theirs():
    with graph_session():
        x = tf.compat.v1.placeholder(tf.float32, [None, None, DEPTH])
        krnn = tfstate.keyed_dynamic_rnn(tfstate.GRUCell(2), x, tf.compat.v1.placeholder(tf.int64, [None]), capacity=4)
        with pytest.raises(ValueError, match="adds the inputs 'keys' and 'start' itself; rename your input 'keys'"):
            tfstate.serving.serving_signatures(krnn, {"keys": x}, {"outputs": krnn.outputs})
        with pytest.raises(ValueError, match="needs at least one output"):
            tfstate.serving.serving_signatures(krnn, {"inputs": x}, {})


def test_export_leaves_the_ops_a_session_has_run_unchanged(tmp_path):
    # TensorFlow warns (and will refuse) when a run op gains a use as a control input of a new op
    with graph_session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, None, DEPTH])
        krnn = tfstate.keyed_dynamic_rnn(tfstate.GRUCell(2), x, tf.compat.v1.placeholder(tf.int64, [None]), capacity=4)
        sess.run(tf.compat.v1.global_variables_initializer())
        krnn.state.initialize_if_needed(sess)
        before = krnn.state.initializer.node_def.SerializeToString()
        tfstate.serving.export_saved_model(
            sess, str(tmp_path / "model"), krnn, {"inputs": x}, {"outputs": krnn.outputs}
        )
        assert krnn.state.initializer.node_def.SerializeToString() == before
