"""The fused cells compute what tfstate.LSTMCell and TF1's legacy LSTMCell compute, under TF1 contrib's names."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_nested_close, graph_session, load_variables, randomize_variables, run_rnn

import tfstate
from tfstate import native
from tfstate.fused import FusedMultiRNNCell, GRUBlockCell, GRUBlockCellV2, LSTMBlockCell, LSTMBlockFusedCell

BATCH, TIME, DEPTH, UNITS = 3, 6, 4, 5
LENGTHS = np.array([6, 2, 0], np.int32)
IMPLEMENTATIONS = ["xla", "block", "loop"]


def _reference(inputs, values, lengths=None, time_major=False, cell=None, layers=1):
    """dynamic_rnn over tfstate.LSTMCell (or `cell`) with the given weights: (outputs, final_state)."""
    with graph_session() as sess:
        if cell is None:
            cells = [tfstate.LSTMCell(UNITS) for _ in range(layers)]
            cell = cells[0] if layers == 1 else tfstate.MultiRNNCell(cells)
        outputs, final = tf.compat.v1.nn.dynamic_rnn(
            cell, tf.constant(inputs), sequence_length=lengths, time_major=time_major, dtype=tf.float32
        )
        load_variables(sess, values)
        return sess.run((outputs, final))


def _unrolled(inputs, make_cell, lengths=None, time_major=False, seed=0):
    """`cell.unroll` inside scope "rnn" from a zero state: (outputs, final_state, variable values)."""
    with graph_session() as sess:
        cell = make_cell()
        batch = inputs.shape[1 if time_major else 0]
        with tf.compat.v1.variable_scope("rnn"):
            outputs, final = cell.unroll(
                tf.constant(inputs), cell.zero_state(batch, tf.float32), sequence_length=lengths, time_major=time_major
            )
        values = randomize_variables(sess, seed)
        return sess.run((outputs, final)) + (values,)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_unroll_equals_dynamic_rnn_over_lstm_cell(rng, implementation, time_major, lengths):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    if time_major:
        inputs = inputs.transpose(1, 0, 2)
    outputs, final, values = _unrolled(
        inputs, lambda: LSTMBlockCell(UNITS, implementation=implementation), lengths, time_major
    )
    assert sorted(values) == ["rnn/lstm_cell/bias:0", "rnn/lstm_cell/kernel:0"]
    expected_outputs, expected_final = _reference(inputs, values, lengths, time_major)
    assert_nested_close(outputs, expected_outputs)
    assert_nested_close(final, expected_final)


@pytest.mark.parametrize(
    "implementation, unknown_length",
    [
        (implementation, unknown)
        for implementation in IMPLEMENTATIONS + ["native", "auto"]
        for unknown in (False, True)
        if not (implementation == "xla" and unknown)
    ],
)  # XLA needs the chunk length at graph-build time
def test_lengths_past_the_chunk_or_negative_follow_dynamic_rnn_on_every_path(rng, implementation, unknown_length):
    # dynamic_rnn's rule: a length past the chunk runs the whole chunk, a negative one runs no step
    # (the block path used to abort the process on the first, and fail on the second)
    if implementation == "native" and native.status() is not None:
        pytest.skip(f"no compiled kernel here: {native.status()}")
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    lengths = np.array([TIME + 3, 2, -4], np.int32)
    outputs, final, _, values, _ = run_rnn(
        inputs, lambda: LSTMBlockCell(UNITS, implementation=implementation), lengths, unknown_length=unknown_length
    )
    expected_outputs, expected_final = _reference(inputs, values, lengths)
    assert_nested_close(outputs, expected_outputs)
    assert_nested_close(final, expected_final)
    np.testing.assert_array_equal(final.c[2], 0)  # the row of negative length kept its (zero) initial state


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_sequence_length_of_the_wrong_size_is_an_error_naming_it(implementation):
    with graph_session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, TIME, DEPTH])
        lengths = tf.compat.v1.placeholder(tf.int32, [None])
        outputs, _ = tfstate.dynamic_rnn(
            LSTMBlockCell(UNITS, implementation=implementation), x, sequence_length=lengths, dtype=tf.float32
        )
        sess.run(tf.compat.v1.global_variables_initializer())
        with pytest.raises(
            tf.errors.InvalidArgumentError,
            match=r"LSTMBlockCell.unroll: sequence_length must have one entry per batch row \(3\); "
            r"got 2 entries",
        ):
            sess.run(outputs, {x: np.zeros([BATCH, TIME, DEPTH]), lengths: [1, 2]})
    with graph_session():
        with pytest.raises(ValueError, match=r"sequence_length must have one entry per batch row \(3\); got 2"):
            tfstate.dynamic_rnn(
                LSTMBlockCell(UNITS), tf.zeros([BATCH, TIME, DEPTH]), sequence_length=[1, 2], dtype=tf.float32
            )
        with pytest.raises(
            ValueError,
            match=r"sequence_length must be a vector of ints, one per batch row; "
            r"got float32",
        ):
            tfstate.dynamic_rnn(
                LSTMBlockCell(UNITS), tf.zeros([BATCH, TIME, DEPTH]), sequence_length=[1.0, 2, 3], dtype=tf.float32
            )


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_peepholes_and_clipping_equal_lstm_cell(rng, implementation):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    outputs, final, values = _unrolled(
        inputs,
        lambda: LSTMBlockCell(UNITS, cell_clip=0.3, use_peephole=True, forget_bias=0.5, implementation=implementation),
        LENGTHS,
    )
    assert sorted(values) == sorted(
        f"rnn/lstm_cell/{n}:0" for n in ["kernel", "bias", "w_i_diag", "w_f_diag", "w_o_diag"]
    )
    reference_cell = tfstate.LSTMCell(UNITS, use_peepholes=True, cell_clip=0.3, forget_bias=0.5)
    expected_outputs, expected_final = _reference(inputs, values, LENGTHS, cell=reference_cell)
    assert_nested_close(outputs, expected_outputs)
    assert_nested_close(final, expected_final)


@pytest.mark.parametrize("implementation", ["auto", "block"])
def test_one_step_call_equals_tf1_legacy_lstm_cell(rng, implementation):
    legacy_cells = pytest.importorskip("tf_keras.src.layers.rnn.legacy_cells")
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    with graph_session() as sess:  # LSTMBlockCell one step at a time, through dynamic_rnn
        cell = LSTMBlockCell(UNITS, implementation=implementation)
        outputs, final = tf.compat.v1.nn.dynamic_rnn(
            cell, tf.constant(inputs), sequence_length=LENGTHS, dtype=tf.float32
        )
        values = randomize_variables(sess)
        actual = sess.run((outputs, final))
    assert sorted(values) == ["rnn/lstm_cell/bias:0", "rnn/lstm_cell/kernel:0"]
    with graph_session() as sess:
        outputs, final = tf.compat.v1.nn.dynamic_rnn(
            legacy_cells.LSTMCell(UNITS), tf.constant(inputs), sequence_length=LENGTHS, dtype=tf.float32
        )
        load_variables(sess, values)
        expected = sess.run((outputs, final))
    assert_nested_close(actual[0], expected[0])
    assert_nested_close(tuple(actual[1]), tuple(expected[1]))


def test_fused_cell_call_is_tf1_time_major_and_its_variables_are_tf1_names(rng):
    inputs = rng.randn(TIME, BATCH, DEPTH).astype(np.float32)
    with graph_session() as sess:
        cell = LSTMBlockFusedCell(UNITS)
        outputs, final = cell(tf.constant(inputs), dtype=tf.float32, sequence_length=LENGTHS)
        values = randomize_variables(sess)
        actual = sess.run((outputs, final))
    assert sorted(values) == ["lstm_fused_cell/bias:0", "lstm_fused_cell/kernel:0"]
    renamed = {name.replace("lstm_fused_cell", "rnn/lstm_cell"): value for name, value in values.items()}
    expected = _reference(inputs, renamed, LENGTHS, time_major=True)
    assert_nested_close(actual, expected)


def test_fused_cell_steps_inside_generate_like_lstm_cell(rng):
    first = rng.randn(BATCH, UNITS).astype(np.float32)
    results = []
    for make in (lambda: LSTMBlockFusedCell(UNITS, name="lstm_cell"), lambda: tfstate.LSTMCell(UNITS)):
        with graph_session() as sess:
            outputs, final = tfstate.generate(make(), tf.constant(first), 4, lambda output: output)
            values = randomize_variables(sess) if not results else load_variables(sess, results[0][1])
            results.append((sess.run((outputs, final)), values))
    assert_nested_close(results[0][0], results[1][0])


@pytest.mark.parametrize("time_major", [False, True])
def test_fused_multi_rnn_cell_equals_multi_rnn_cell(rng, time_major):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    if time_major:
        inputs = inputs.transpose(1, 0, 2)
    outputs, final, values = _unrolled(
        inputs, lambda: FusedMultiRNNCell([LSTMBlockCell(UNITS), LSTMBlockCell(UNITS)]), LENGTHS, time_major
    )
    assert "rnn/multi_rnn_cell/cell_1/lstm_cell/kernel:0" in values
    expected_outputs, expected_final = _reference(inputs, values, LENGTHS, time_major, layers=2)
    assert_nested_close(outputs, expected_outputs)
    assert_nested_close(final, expected_final)


def test_stateful_dynamic_rnn_with_fused_cell_carries_state_like_one_long_run(rng):
    inputs = rng.randn(BATCH, 2 * TIME, DEPTH).astype(np.float32)
    with graph_session() as sess:
        chunk = tf.compat.v1.placeholder(tf.float32, [BATCH, TIME, DEPTH])
        rnn = tfstate.stateful_dynamic_rnn(LSTMBlockCell(UNITS), chunk, batch_size=BATCH)
        sess.run(tf.compat.v1.local_variables_initializer())
        values = randomize_variables(sess)
        ops = len(sess.graph.get_operations())
        first, _ = sess.run((rnn.outputs, rnn.keep), {chunk: inputs[:, :TIME]})
        second, _ = sess.run((rnn.outputs, rnn.keep), {chunk: inputs[:, TIME:]})
        assert len(sess.graph.get_operations()) == ops
    expected_outputs, _ = _reference(inputs, values)
    np.testing.assert_allclose(np.concatenate([first, second], 1), expected_outputs, atol=1e-5, rtol=0)


def test_unroll_under_eager_execution_names_the_fix():
    with pytest.raises(RuntimeError, match="eagerly"):
        LSTMBlockCell(UNITS).unroll(tf.zeros([1, 2, 3]), tfstate.LSTMStateTuple(tf.zeros([1, 5]), tf.zeros([1, 5])))


def test_unknown_implementation_is_rejected():
    with pytest.raises(ValueError, match="implementation"):
        LSTMBlockCell(UNITS, implementation="cuda")


@pytest.mark.parametrize("second", ["xla", "block"])
def test_fused_stack_on_xla_is_one_compiled_call_and_a_mixed_stack_equals_it_too(rng, second):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    with graph_session() as sess:
        cell = FusedMultiRNNCell(
            [LSTMBlockCell(UNITS, implementation="xla"), LSTMBlockCell(UNITS, implementation=second)]
        )
        with tf.compat.v1.variable_scope("rnn"):
            outputs, final = cell.unroll(
                tf.constant(inputs), cell.zero_state(BATCH, tf.float32), sequence_length=LENGTHS
            )
        calls = [op for op in sess.graph.get_operations() if op.type in ("PartitionedCall", "StatefulPartitionedCall")]
        block_ops = [op for op in sess.graph.get_operations() if op.type == "BlockLSTM"]
        values = randomize_variables(sess)
        outputs, final = sess.run((outputs, final))
    # both XLA layers in one compiled call; or the first layer's call and the second layer's BlockLSTM
    assert len(calls) == 1 and len(block_ops) == (second == "block")
    expected_outputs, expected_final = _reference(inputs, values, LENGTHS, layers=2)
    assert_nested_close(outputs, expected_outputs)
    assert_nested_close(final, expected_final)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("peepholes", [False, True])
def test_gradients_equal_tensorflow_autodiff_of_lstm_cell(rng, implementation, peepholes):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    settings = dict(cell_clip=0.3, forget_bias=0.5) if peepholes else {}
    outputs, final, grads, values, _ = run_rnn(
        inputs,
        lambda: LSTMBlockCell(UNITS, use_peephole=peepholes, implementation=implementation, **settings),
        LENGTHS,
        gradients=True,
    )
    expected = run_rnn(
        inputs,
        lambda: tfstate.LSTMCell(UNITS, use_peepholes=peepholes, **settings),
        LENGTHS,
        values=values,
        gradients=True,
    )
    assert_nested_close((outputs, final, grads), expected[:3])


@pytest.mark.parametrize("time_major", [False, True])
def test_fused_stack_on_xla_gradients_equal_multi_rnn_cell_autodiff(rng, time_major):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    if time_major:
        inputs = inputs.transpose(1, 0, 2)
    stack = lambda: FusedMultiRNNCell(
        [LSTMBlockCell(UNITS, implementation="xla"), LSTMBlockCell(UNITS, use_peephole=True, implementation="xla")]
    )
    outputs, final, grads, values, _ = run_rnn(inputs, stack, LENGTHS, time_major, gradients=True)
    plain = lambda: tfstate.MultiRNNCell([tfstate.LSTMCell(UNITS), tfstate.LSTMCell(UNITS, use_peepholes=True)])
    expected = run_rnn(inputs, plain, LENGTHS, time_major, values=values, gradients=True)
    assert_nested_close((outputs, final, grads), expected[:3])


def test_training_a_long_chunk_on_the_xla_path_runs_and_lowers_the_loss(rng):
    # Autodiff of a 50-step static unroll summed the recurrent kernel's 50 gradients in one AddN,
    # which Grappler's memory optimizer (for gradients this large) rewrote into TemporaryVariable
    # ops that XLA cannot compile: the first training run failed.
    inputs = rng.randn(1, 50, 1).astype(np.float32)
    with graph_session() as sess:
        rnn = tfstate.stateful_dynamic_rnn(LSTMBlockCell(512, implementation="xla"), tf.constant(inputs), batch_size=1)
        loss = tf.reduce_mean(tf.square(rnn.outputs - 0.5))
        train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss)
        sess.run([tf.compat.v1.global_variables_initializer(), tf.compat.v1.local_variables_initializer()])
        before = sess.run(loss, {rnn.step: 0})
        for _ in range(5):
            sess.run(train, {rnn.step: 0})
        assert sess.run(loss, {rnn.step: 0}) < before


@pytest.mark.parametrize("implementation", ["block", "loop"])
def test_gradients_through_a_chunk_of_unknown_length_equal_lstm_cell(rng, implementation):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)  # fed with an unknown length: while_loops, no unroll
    outputs, final, grads, values, _ = run_rnn(
        inputs,
        lambda: LSTMBlockCell(UNITS, implementation=implementation),
        LENGTHS,
        gradients=True,
        unknown_length=True,
    )
    expected = run_rnn(inputs, lambda: tfstate.LSTMCell(UNITS), LENGTHS, values=values, gradients=True)
    assert_nested_close((outputs, final, grads), expected[:3])


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_a_chunk_of_zero_steps_returns_the_initial_state_with_zero_gradients_through_it(rng, implementation):
    inputs = rng.randn(BATCH, 0, DEPTH).astype(np.float32)
    for unknown_length in (False, True) if implementation != "xla" else (False,):  # xla needs T at build time
        outputs, final, grads, values, _ = run_rnn(
            inputs,
            lambda: LSTMBlockCell(UNITS, implementation=implementation),
            gradients=True,
            unknown_length=unknown_length,
        )
        expected = run_rnn(inputs, lambda: tfstate.LSTMCell(UNITS), values=values, gradients=True)
        assert outputs.shape == (BATCH, 0, UNITS)
        assert_nested_close((outputs, final, grads), expected[:3])


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_cell_clip_zero_means_no_clipping_as_in_tf1_contrib(rng, implementation):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    clipped_at_zero = run_rnn(
        inputs, lambda: LSTMBlockCell(UNITS, cell_clip=0.0, implementation=implementation), LENGTHS, gradients=True
    )
    unclipped = run_rnn(
        inputs,
        lambda: LSTMBlockCell(UNITS, implementation=implementation),
        LENGTHS,
        values=clipped_at_zero.values,
        gradients=True,
    )
    assert_nested_close(clipped_at_zero[:3], unclipped[:3])
    assert np.abs(clipped_at_zero.final.c).max() > 0.1


def test_gru_block_cell_v2_equals_tf1_legacy_gru_cell_with_the_same_variables(rng):
    legacy_cells = pytest.importorskip("tf_keras.src.layers.rnn.legacy_cells")
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    outputs, final, grads, values, _ = run_rnn(inputs, lambda: GRUBlockCellV2(UNITS), LENGTHS, gradients=True)
    assert sorted(values) == [
        f"rnn/gru_cell/{name}:0" for name in ["candidate/bias", "candidate/kernel", "gates/bias", "gates/kernel"]
    ]
    expected = run_rnn(inputs, lambda: legacy_cells.GRUCell(UNITS), LENGTHS, values=values)
    assert_nested_close((outputs, final), expected[:2])
    autodiff = run_rnn(inputs, lambda: tfstate.GRUCell(UNITS), LENGTHS, values=values, gradients=True)
    assert_nested_close(grads, autodiff.gradients)  # the gradient tfstate registers for the GRUBlockCell op


def test_gru_block_cell_has_tf1_contrib_variable_names_and_the_same_maths(rng):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    outputs, final, _, values, _ = run_rnn(inputs, lambda: GRUBlockCell(cell_size=UNITS), LENGTHS)
    assert sorted(values) == [f"rnn/gru_cell/{name}:0" for name in ["b_c", "b_ru", "w_c", "w_ru"]]
    new_names = {"w_ru": "gates/kernel", "b_ru": "gates/bias", "w_c": "candidate/kernel", "b_c": "candidate/bias"}
    renamed = {f"rnn/gru_cell/{new_names[name.split('/')[-1][:-2]]}:0": value for name, value in values.items()}
    expected = run_rnn(inputs, lambda: tfstate.GRUCell(UNITS), LENGTHS, values=renamed)
    assert_nested_close((outputs, final), expected[:2])


def test_gru_block_cell_step_is_tensorflows_fused_kernel():
    with graph_session() as sess:
        GRUBlockCellV2(4)(tf.zeros([2, 3]), tf.zeros([2, 4]))
        assert "GRUBlockCell" in {op.type for op in sess.graph.get_operations()}


def test_gru_block_cells_name_what_they_cannot_do():
    with pytest.raises(ValueError, match="exactly one of num_units and cell_size"):
        GRUBlockCellV2(4, cell_size=4)
    with graph_session():
        with pytest.raises(ValueError, match="float32 only; the inputs are float64"):
            GRUBlockCellV2(4)(tf.zeros([2, 3], tf.float64), tf.zeros([2, 4], tf.float64))


def test_fused_cells_say_what_they_need_and_how_to_fix_it():
    with graph_session():
        with pytest.raises(
            ValueError,
            match=r"LSTMBlockFusedCell called on one step \(inputs of shape \(2, 4\)\) "
            r"needs the state to step from: cell\(x_t, state\)",
        ):
            LSTMBlockFusedCell(UNITS)(tf.zeros([2, DEPTH]))
        stack = FusedMultiRNNCell([tfstate.GRUCell(UNITS), tfstate.GRUCell(UNITS)], state_is_tuple=False)
        with pytest.raises(ValueError, match=r"needs state_is_tuple=True \(the default\); got state_is_tuple=False"):
            stack.unroll(tf.zeros([2, 3, DEPTH]), tf.zeros([2, 2 * UNITS]))


def test_a_mixed_fused_stack_has_multi_rnn_cells_variable_names(rng):
    def names(make_stack):
        with graph_session():
            tfstate.dynamic_rnn(
                make_stack([LSTMBlockCell(UNITS), tfstate.GRUCell(UNITS)]),
                tf.zeros([BATCH, TIME, DEPTH]),
                dtype=tf.float32,
            )
            return [v.op.name for v in tf.compat.v1.global_variables()]

    assert names(FusedMultiRNNCell) == names(tfstate.MultiRNNCell)
