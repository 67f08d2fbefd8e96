"""Resets inside a chunk: a chunk with a `[batch, time]` reset mask equals its pieces run separately, on every path."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    NestedInputsCell,
    assert_nested_close,
    graph_session,
    load_variables,
    nested_inputs_recurrence,
    randomize_variables,
)

import tfstate
from tfstate import native
from tfstate.fused import FusedMultiRNNCell, GRUBlockCellV2, LSTMBlockCell

BATCH, TIME, DEPTH, UNITS = 3, 8, 4, 5
RESETS = np.zeros([BATCH, TIME], bool)
RESETS[0, 3] = RESETS[0, 6] = True  # row 0: three streams packed, of 3, 3 and 2 steps
RESETS[2, 5] = True  # row 2: a reset past its length (4): nothing happens
LENGTHS = np.array([TIME, TIME, 4], np.int32)

MAKERS = {
    "lstm_cell": lambda: tfstate.LSTMCell(UNITS),
    "gru_cell": lambda: tfstate.GRUCell(UNITS),
    "block_xla": lambda: LSTMBlockCell(UNITS, implementation="xla"),
    "block_loop": lambda: LSTMBlockCell(UNITS, implementation="loop", use_peephole=True, cell_clip=0.5),
    "block_auto": lambda: LSTMBlockCell(UNITS),
    "fused_stack": lambda: FusedMultiRNNCell([LSTMBlockCell(UNITS), LSTMBlockCell(UNITS)]),
    "mixed_stack": lambda: FusedMultiRNNCell([LSTMBlockCell(UNITS), tfstate.GRUCell(UNITS)]),
    "gru_block_xla": lambda: GRUBlockCellV2(UNITS, implementation="xla"),
    "gru_block_loop": lambda: GRUBlockCellV2(UNITS, implementation="loop"),
}


def _pieces(resets_row, length):
    """[(start, end)] of the streams packed in one row, up to its length."""
    starts = [0] + [t for t in range(1, length) if resets_row[t]]
    return list(zip(starts, starts[1:] + [length]))


def _oracle(make_cell, inputs, initial, reset, values, lengths=LENGTHS):
    """Each row's pieces run separately with plain dynamic_rnn: (outputs, final state) per row, stacked."""
    with graph_session() as sess:
        cell = make_cell()
        x = tf.compat.v1.placeholder(tf.float32, [1, None, DEPTH])
        start = tf.nest.map_structure(lambda part: tf.compat.v1.placeholder(tf.float32, [1, part.shape[-1]]), initial)
        outputs, final = tf.compat.v1.nn.dynamic_rnn(cell, x, initial_state=start)
        load_variables(sess, values)
        rows_out, rows_final = [], []
        for row in range(BATCH):
            out = np.zeros([TIME, outputs.shape[-1]], np.float32)
            state = tf.nest.map_structure(lambda part, row=row: part[row : row + 1], initial)
            for first, end in _pieces(RESETS[row], lengths[row]):
                if first > 0:
                    state = tf.nest.map_structure(lambda part, row=row: part[row : row + 1], reset)
                feed = {x: inputs[row : row + 1, first:end]}
                feed.update(zip(tf.nest.flatten(start), tf.nest.flatten(state)))
                piece, state = sess.run((outputs, final), feed)
                out[first:end] = piece[0]
            rows_out.append(out)
            rows_final.append(state)
        final_state = tf.nest.map_structure(lambda *parts: np.concatenate(parts), *rows_final)
        return np.stack(rows_out), final_state


def _states(cell, rng, scale):
    return tf.nest.map_structure(lambda size: (scale * rng.randn(BATCH, size)).astype(np.float32), cell.state_size)


def _chunk_with_resets(make_cell, rng, unknown_length=False, time_major=False):
    """`(actual, expected, op types)`: a chunk with RESETS through `tfstate.dynamic_rnn` and its pieces run apart."""
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    with graph_session() as sess:
        cell = make_cell()
        initial, reset = _states(cell, rng, 0.5), _states(cell, rng, 0.5)
        x, resets = tf.constant(inputs), tf.constant(RESETS)
        if time_major:
            x, resets = tf.transpose(x, [1, 0, 2]), tf.transpose(resets)
        if unknown_length:
            x = tf.compat.v1.placeholder_with_default(x, [None, BATCH, DEPTH] if time_major else [BATCH, None, DEPTH])
        as_tensors = lambda nest: tf.nest.map_structure(tf.constant, nest)
        outputs, final = tfstate.dynamic_rnn(
            cell, x, LENGTHS, as_tensors(initial), resets=resets, reset_state=as_tensors(reset), time_major=time_major
        )
        if time_major:
            outputs = tf.transpose(outputs, [1, 0, 2])
        values = randomize_variables(sess, scale=0.4)
        actual = sess.run((outputs, final))
        types = {op.type for op in sess.graph.get_operations()}
    return actual, _oracle(make_cell, inputs, initial, reset, values), types


@pytest.mark.parametrize("unknown_length", [False, True], ids=["static_length", "unknown_length"])
@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_chunk_with_resets_equals_its_pieces_run_separately(rng, kind, unknown_length):
    actual, expected, _ = _chunk_with_resets(MAKERS[kind], rng, unknown_length)
    assert_nested_close(actual, expected)


NATIVE_UNITS = 20  # two or more groups of units in every variant (16, 8 or 4 wide), the last one partial
NATIVE_MAKERS = {
    "native": lambda: LSTMBlockCell(NATIVE_UNITS, implementation="native"),
    "native_peepholes_clip": lambda: LSTMBlockCell(
        NATIVE_UNITS, implementation="native", use_peephole=True, cell_clip=0.5, forget_bias=0.5
    ),
    "auto_stack": lambda: FusedMultiRNNCell([LSTMBlockCell(NATIVE_UNITS), LSTMBlockCell(NATIVE_UNITS)]),
    "native_gru": lambda: GRUBlockCellV2(NATIVE_UNITS, implementation="native"),
    "auto_gru_cell_stack": lambda: FusedMultiRNNCell([tfstate.GRUCell(NATIVE_UNITS), LSTMBlockCell(NATIVE_UNITS)]),
}


@pytest.mark.parametrize(
    "kind, time_major, unknown_length",
    [
        ("native", True, True),
        ("native_peepholes_clip", False, False),
        ("auto_stack", False, True),
        ("native_gru", True, False),
        ("auto_gru_cell_stack", False, True),
    ],
)
def test_a_chunk_with_resets_on_the_compiled_kernel_equals_its_pieces_run_separately(
    rng, monkeypatch, isa, kind, time_major, unknown_length
):
    monkeypatch.setenv("TFSTATE_NATIVE_THREADS", "2")  # the units split between two threads
    actual, expected, types = _chunk_with_resets(NATIVE_MAKERS[kind], rng, unknown_length, time_major)
    assert native.op_type("gru" if "gru" in kind else "lstm", isa) in types  # "auto" takes the kernel with resets too
    assert_nested_close(actual, expected)


def _gradients_through_resets(make_cell, rng):
    """`[(outputs, gradients) of a chunk with resets on the cell's own path, the same of it stepped by dynamic_rnn]`."""
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    features = rng.randn(BATCH, 3).astype(np.float32)
    results = []
    for stepped in (False, True):
        with graph_session() as sess:
            cell = make_cell()
            x = tf.constant(inputs)
            names = iter(range(len(tf.nest.flatten(cell.state_size))))
            reset = tf.nest.map_structure(
                lambda size: tfstate.layers.dense(tf.constant(features), size, name=f"reset{next(names)}"),
                cell.state_size,
            )
            zero = cell.zero_state(BATCH, tf.float32)
            if stepped:
                outputs, final = tfstate.resets.stepped_with_resets(
                    cell, x, tf.constant(RESETS), reset, zero, LENGTHS, False, None
                )
            else:
                outputs, final = tfstate.dynamic_rnn(cell, x, LENGTHS, zero, resets=RESETS, reset_state=reset)
            loss = tf.reduce_sum(outputs * tf.sin(outputs)) + tf.add_n(
                [tf.reduce_sum(s * s) for s in tf.nest.flatten(final)]
            )
            variables = sorted(tf.compat.v1.trainable_variables(), key=lambda v: v.name)
            grads = tf.gradients(loss, [x] + variables)
            values = randomize_variables(sess, scale=0.4) if not results else load_variables(sess, results[0][1])
            results.append((sess.run((outputs, grads)), values, {op.type for op in sess.graph.get_operations()}))
    return results


@pytest.mark.parametrize("kind", ["block_xla", "block_loop", "fused_stack", "gru_block_xla"])
def test_gradients_through_resets_equal_tensorflow_autodiff_of_the_stepped_cell(rng, kind):
    # the fused paths' explicit gradient against autodiff of the same cells stepped by dynamic_rnn,
    # reset_state's gradient included (here it is trainable: a projection of features)
    fused, stepped = _gradients_through_resets(MAKERS[kind], rng)
    assert_nested_close(fused[0], stepped[0], atol=2e-5)


@pytest.mark.parametrize("kind", ["native_peepholes_clip", "native_gru"])
def test_gradients_through_resets_on_the_compiled_kernel_equal_autodiff_of_the_stepped_cell(
    rng, monkeypatch, isa, kind
):
    monkeypatch.setenv("TFSTATE_NATIVE_THREADS", "2")
    fused, stepped = _gradients_through_resets(NATIVE_MAKERS[kind], rng)
    assert native.op_type("gru" if "gru" in kind else "lstm", isa) in fused[2]
    assert_nested_close(fused[0], stepped[0], atol=2e-5)


def test_stateful_rnn_with_resets_carries_the_last_stream_and_resets_to_reset_value(rng):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    features = rng.randn(BATCH, 2).astype(np.float32)
    with graph_session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, None, DEPTH])
        resets = tf.compat.v1.placeholder(tf.bool, [None, None])
        f = tf.compat.v1.placeholder(tf.float32, [None, 2])
        start = tfstate.layers.dense(f, UNITS, activation=tf.tanh, name="start")
        rnn = tfstate.stateful_dynamic_rnn(tfstate.GRUCell(UNITS), x, reset_value=start, resets=resets)
        sess.run(tf.compat.v1.global_variables_initializer())
        values = randomize_variables(sess)
        stateful = tfstate.StatefulSession(sess, rnn)
        chunks = [
            stateful.run(
                rnn.outputs,
                {x: inputs[:, t : t + 4], resets: RESETS[:, t : t + 4], f: features},
                step=0 if t == 0 else None,
            )
            for t in (0, 4)
        ]  # a reset at step 6 of row 0
        kept = rnn.state.read(sess)
        reset_to = sess.run(start, {f: features})
    cell_values = {name: value for name, value in values.items() if name.startswith("rnn/")}
    expected_outputs, expected_final = _oracle(
        lambda: tfstate.GRUCell(UNITS), inputs, reset_to, reset_to, cell_values, lengths=np.full([BATCH], TIME)
    )
    assert_nested_close((np.concatenate(chunks, axis=1), kept), (expected_outputs, expected_final))


def test_resets_of_the_wrong_shape_or_dtype_and_paths_that_cannot_reset_are_clear_errors():
    with graph_session() as sess:
        with pytest.raises(
            ValueError, match=r"resets must be \[batch, time\] like the inputs \(3, 8\); got shape \(3, 7\)"
        ):
            tfstate.dynamic_rnn(
                LSTMBlockCell(UNITS),
                tf.zeros([BATCH, TIME, DEPTH]),
                dtype=tf.float32,
                resets=tf.zeros([BATCH, TIME - 1], tf.bool),
            )
        with pytest.raises(ValueError, match=r"resets must be a bool \[batch, time\] mask .* got float32"):
            tfstate.dynamic_rnn(
                tfstate.GRUCell(UNITS), tf.zeros([BATCH, TIME, DEPTH]), dtype=tf.float32, resets=tf.zeros([BATCH, TIME])
            )
        with pytest.raises(
            ValueError,
            match=r"implementation='block'\) cannot reset rows inside a chunk \(TensorFlow's "
            r"BlockLSTM kernel has no reset mask\)",
        ):
            tfstate.dynamic_rnn(
                LSTMBlockCell(UNITS, implementation="block"),
                tf.zeros([BATCH, TIME, DEPTH]),
                dtype=tf.float32,
                resets=tf.zeros([BATCH, TIME], tf.bool),
            )
        fed = tf.compat.v1.placeholder(tf.bool, [None, None])
        outputs, _ = tfstate.dynamic_rnn(
            tfstate.GRUCell(UNITS), tf.zeros([BATCH, TIME, DEPTH]), dtype=tf.float32, resets=fed
        )
        sess.run(tf.compat.v1.global_variables_initializer())
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"resets must be \[batch, time\] like the inputs"):
            sess.run(outputs, {fed: np.zeros([BATCH, TIME + 1], bool)})


@pytest.mark.parametrize("time_major", [False, True], ids=["batch_major", "time_major"])
def test_a_cell_with_nested_inputs_resets_like_its_numpy_recurrence(rng, time_major):
    a, b = rng.randn(BATCH, TIME, 2).astype(np.float32), rng.randn(BATCH, TIME, 1).astype(np.float32)
    initial, reset = rng.randn(BATCH, 2).astype(np.float32), rng.randn(BATCH, 2).astype(np.float32)
    expected, state = nested_inputs_recurrence(a, b, initial, (RESETS, reset))  # every row runs all TIME steps
    with graph_session() as sess:
        inputs, resets = (tf.constant(a), tf.constant(b)), tf.constant(RESETS)
        if time_major:
            inputs, resets = tf.nest.map_structure(lambda x: tf.transpose(x, [1, 0, 2]), inputs), tf.transpose(resets)
        outputs, final = tfstate.dynamic_rnn(
            NestedInputsCell(), inputs, initial_state=initial, resets=resets, reset_state=reset, time_major=time_major
        )
        outputs, final = sess.run((outputs, final))
    np.testing.assert_allclose(outputs.transpose(1, 0, 2) if time_major else outputs, expected, atol=1e-5)
    np.testing.assert_allclose(final, state, atol=1e-5)
