"""The GRU's whole-chunk paths (compiled kernel, XLA, loop) compute what tfstate.GRUCell stepped by TF1's dynamic_rnn
computes, values and TensorFlow-autodiff gradients, under GRUCell's variable names."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_nested_close, buildable, graph_session, load_variables, randomize_variables, run_rnn

import tfstate
from tfstate import native
from tfstate.fused import FusedMultiRNNCell, GRUBlockCell, GRUBlockCellV2, LSTMBlockCell

BATCH, TIME, DEPTH, UNITS = 7, 6, 5, 20  # 7 rows: full register tiles and shorter ones; 20 units: partial groups
LENGTHS = np.array([6, 2, 0, 6, 5, 1, 3], np.int32)
GRU_NAMES = ["candidate/bias", "candidate/kernel", "gates/bias", "gates/kernel"]
needs_auto_kernel = pytest.mark.skipif(
    not buildable or bool(tf.config.list_physical_devices("GPU")),
    reason="GRUCell takes the compiled kernel only where it is built and no GPU is visible",
)


def _run(make_cell, inputs, h0, lengths=None, time_major=False, values=None, stepped=False):
    """`(outputs, final h, gradients w.r.t. [inputs, h0, variables...], values, op types)` of a GRU over `inputs`.

    The cell runs under `tfstate.dynamic_rnn` (its whole-chunk path), or with `stepped`, under TF1's
    `dynamic_rnn` with TensorFlow's autodiff (the oracle). Variables get `values` or random ones.
    """
    with graph_session() as sess:
        x, start = tf.constant(inputs), tf.constant(h0)
        run = tf.compat.v1.nn.dynamic_rnn if stepped else tfstate.dynamic_rnn
        outputs, final = run(make_cell(), x, lengths, start, time_major=time_major)
        loss = tf.reduce_sum(outputs * tf.sin(outputs)) + tf.reduce_sum(final * final)
        variables = sorted(tf.compat.v1.global_variables(), key=lambda v: v.name)
        grads = tf.gradients(loss, [x, start] + variables, unconnected_gradients="zero")
        values = randomize_variables(sess, scale=0.4) if values is None else load_variables(sess, values) or values
        types = {op.type for op in sess.graph.get_operations()}
        return sess.run((outputs, final, grads)) + (values, types)


def _inputs(rng, time_major=False, steps=TIME, batch=BATCH):
    inputs = rng.randn(batch, steps, DEPTH).astype(np.float32)
    return (inputs.transpose(1, 0, 2) if time_major else inputs), (0.5 * rng.randn(batch, UNITS)).astype(np.float32)


def _assert_equals_stepped_gru_cell(actual, inputs, h0, lengths=None, time_major=False):
    assert sorted(actual[3]) == [f"rnn/gru_cell/{name}:0" for name in GRU_NAMES]
    expected = _run(lambda: tfstate.GRUCell(UNITS), inputs, h0, lengths, time_major, actual[3], stepped=True)
    assert_nested_close(actual[:2], expected[:2])
    assert_nested_close(actual[2], expected[2], atol=2e-5)


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
def test_native_gru_and_its_gradients_equal_gru_cell_stepped_by_dynamic_rnn(rng, monkeypatch, isa, time_major, lengths):
    monkeypatch.setenv("TFSTATE_NATIVE_THREADS", "2")  # the units split between two threads
    inputs, h0 = _inputs(rng, time_major)
    actual = _run(lambda: GRUBlockCellV2(UNITS, implementation="native"), inputs, h0, lengths, time_major)
    assert native.op_type("gru", isa) in actual[4]
    _assert_equals_stepped_gru_cell(actual, inputs, h0, lengths, time_major)


@pytest.mark.parametrize("implementation", ["xla", "loop"])
@pytest.mark.parametrize("time_major", [False, True])
def test_xla_and_loop_gru_and_their_gradients_equal_gru_cell_stepped_by_dynamic_rnn(rng, implementation, time_major):
    inputs, h0 = _inputs(rng, time_major)
    actual = _run(lambda: GRUBlockCellV2(UNITS, implementation=implementation), inputs, h0, LENGTHS, time_major)
    assert not any(op_type.startswith("TfstateGru") for op_type in actual[4])
    _assert_equals_stepped_gru_cell(actual, inputs, h0, LENGTHS, time_major)


def test_the_whole_chunk_gru_equals_tf1s_legacy_gru_cell(rng):
    legacy_cells = pytest.importorskip("tf_keras.src.layers.rnn.legacy_cells")
    inputs, _ = _inputs(rng)
    outputs, final, _, values, _ = run_rnn(inputs, lambda: GRUBlockCellV2(UNITS), LENGTHS)
    expected = run_rnn(inputs, lambda: legacy_cells.GRUCell(UNITS), LENGTHS, values=values)
    assert_nested_close((outputs, final), expected[:2])


@needs_auto_kernel
def test_gru_cell_runs_whole_chunks_on_the_kernel_with_its_own_variable_names(rng):
    inputs, h0 = _inputs(rng)
    actual = _run(lambda: tfstate.GRUCell(UNITS), inputs, h0, LENGTHS)
    assert native.op_type("gru", native.variant()) in actual[4]
    _assert_equals_stepped_gru_cell(actual, inputs, h0, LENGTHS)


@pytest.mark.parametrize(
    "make_cell",
    [
        lambda: tfstate.GRUCell(UNITS, activation=tf.nn.relu),  # other maths than the kernel's
        lambda: tfstate.rnn_cell.CudnnCompatibleGRUCell(UNITS),  # a GRUCell subclass with a step of its own
    ],
    ids=["relu", "cudnn_compatible"],
)
def test_gru_cells_with_other_maths_step_as_in_tf1(rng, make_cell):
    inputs, h0 = _inputs(rng)
    actual = _run(make_cell, inputs, h0, LENGTHS)
    assert not any(op_type.startswith("TfstateGru") for op_type in actual[4])
    expected = _run(make_cell, inputs, h0, LENGTHS, values=actual[3], stepped=True)
    assert_nested_close(actual[:3], expected[:3])


def test_gru_block_cell_unroll_reads_tf1_contribs_variable_names(rng):
    inputs, h0 = _inputs(rng)
    outputs, final, _, values, _ = _run(lambda: GRUBlockCell(cell_size=UNITS), inputs, h0, LENGTHS)
    assert sorted(values) == [f"rnn/gru_cell/{name}:0" for name in ["b_c", "b_ru", "w_c", "w_ru"]]
    renamed = {"w_ru": "gates/kernel", "b_ru": "gates/bias", "w_c": "candidate/kernel", "b_c": "candidate/bias"}
    values = {f"rnn/gru_cell/{renamed[name.split('/')[-1][:-2]]}:0": value for name, value in values.items()}
    expected = _run(lambda: tfstate.GRUCell(UNITS), inputs, h0, LENGTHS, values=values, stepped=True)
    assert_nested_close((outputs, final), expected[:2])


@pytest.mark.parametrize("implementation", ["native", "xla", "loop"])
def test_chunks_of_a_stream_through_stateful_dynamic_rnn_equal_one_long_run(rng, implementation):
    if implementation == "native" and native.status() is not None:
        pytest.skip(f"no compiled kernel here: {native.status()}")
    inputs, _ = _inputs(rng, steps=3 * TIME)
    with graph_session() as sess:
        chunk = tf.compat.v1.placeholder(tf.float32, [BATCH, None if implementation != "xla" else TIME, DEPTH])
        rnn = tfstate.stateful_dynamic_rnn(
            GRUBlockCellV2(UNITS, implementation=implementation), chunk, batch_size=BATCH
        )
        sess.run(tf.compat.v1.local_variables_initializer())
        values = randomize_variables(sess, scale=0.4)
        ops = len(sess.graph.get_operations())
        sizes = [TIME] * 3 if implementation == "xla" else [TIME, 1, 2 * TIME - 1]
        starts = np.cumsum([0] + sizes[:-1])
        pieces = [
            sess.run((rnn.outputs, rnn.keep), {chunk: inputs[:, start : start + size]})[0]
            for start, size in zip(starts, sizes)
        ]
        kept = rnn.state.read(sess)
        assert len(sess.graph.get_operations()) == ops
    zero = np.zeros([BATCH, UNITS], np.float32)
    expected = _run(lambda: tfstate.GRUCell(UNITS), inputs, zero, values=values, stepped=True)
    assert_nested_close((np.concatenate(pieces, 1), kept), expected[:2])


@pytest.mark.parametrize("layers", ["gru_lstm", "lstm_gru"])
def test_a_fused_stack_mixing_gru_and_lstm_layers_equals_multi_rnn_cell_values_and_gradients(rng, layers):
    inputs, _ = _inputs(rng)
    kinds = layers.split("_")
    fused = {"gru": lambda: tfstate.GRUCell(UNITS), "lstm": lambda: LSTMBlockCell(UNITS)}
    plain = {"gru": lambda: tfstate.GRUCell(UNITS), "lstm": lambda: tfstate.LSTMCell(UNITS)}
    actual = run_rnn(inputs, lambda: FusedMultiRNNCell([fused[kind]() for kind in kinds]), LENGTHS, gradients=True)
    expected = run_rnn(
        inputs,
        lambda: tfstate.MultiRNNCell([plain[kind]() for kind in kinds]),
        LENGTHS,
        values=actual.values,
        gradients=True,
    )
    assert_nested_close(actual[:2], expected[:2])
    assert_nested_close(actual.gradients, expected.gradients, atol=2e-5)


@pytest.mark.parametrize("implementation", ["native", "xla", "loop"])
def test_zero_steps_or_zero_rows_leave_the_state_as_it_was_with_zero_gradients(rng, implementation):
    if implementation == "native" and native.status() is not None:
        pytest.skip(f"no compiled kernel here: {native.status()}")
    for steps, batch in [(0, 3), (4, 0)]:
        inputs, h0 = _inputs(rng, steps=steps, batch=batch)
        actual = _run(lambda: GRUBlockCellV2(UNITS, implementation=implementation), inputs, h0)
        expected = _run(lambda: tfstate.GRUCell(UNITS), inputs, h0, values=actual[3], stepped=True)
        assert actual[0].shape == (batch, steps, UNITS)
        assert_nested_close(actual[:3], expected[:3])


def test_gru_whole_chunk_paths_say_what_they_cannot_do():
    with pytest.raises(ValueError, match=r"GRUBlockCellV2\(implementation='block'\) is not one of"):
        GRUBlockCellV2(UNITS, implementation="block")
    with graph_session():
        with pytest.raises(
            native.NativeUnavailableError,
            match="compiled GRU kernel cannot run this GRU: it computes in float32; the inputs are float64",
        ):
            tfstate.fused.gru.unroll_gru(
                tfstate.GRUCell(UNITS),
                tf.zeros([2, 3, 4], tf.float64),
                tf.zeros([2, UNITS], tf.float64),
                implementation="native",
            )
        with pytest.raises(ValueError, match=r"GRUBlockCellV2.unroll needs 3-D inputs; got shape \(2, 4\)"):
            GRUBlockCellV2(UNITS).unroll(tf.zeros([2, 4]), tf.zeros([2, UNITS]))
        with pytest.raises(ValueError, match=r"The initial state given to GRUBlockCellV2\.unroll"):
            GRUBlockCellV2(UNITS).unroll(tf.zeros([2, 3, 4]), tf.zeros([2, UNITS + 1]))


def test_gru_kernel_rejects_mismatched_shapes_naming_the_expected_ones(isa):
    with graph_session() as sess:
        outputs, _ = native.gru_sequence(
            tf.zeros([2, 3, 4]),
            tf.zeros([2, 16]),
            tf.compat.v1.placeholder_with_default(tf.zeros([19, 32]), [None, None]),
            tf.zeros([32]),
            tf.zeros([20, 16]),
            tf.zeros([16]),
            None,
            False,
        )
        with pytest.raises(
            tf.errors.InvalidArgumentError,
            match=native.op_type("gru", isa) + r" with 3 steps, batch "
            r"2, depth 4 and 16 units needs h0 \[2, 16\], gate_kernel \[20, 32\]",
        ):
            sess.run(outputs)
