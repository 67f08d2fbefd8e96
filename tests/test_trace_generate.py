"""Per-timestep states against prefix runs, generation against the per-step session.run loop."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_nested_close, graph_session, randomize_variables

import tfstate

BATCH, TIME, DEPTH = 3, 6, 4
LENGTHS = [6, 3, 1]

CELLS = {
    "multi_lstm_gru": lambda: tfstate.MultiRNNCell([tfstate.LSTMCell(5), tfstate.GRUCell(4)]),
    "lstm_projection": lambda: tfstate.LSTMCell(6, num_proj=3, use_peepholes=True),
    "concat_state": lambda: tfstate.MultiRNNCell(
        [tfstate.LSTMCell(4, state_is_tuple=False), tfstate.GRUCell(3)], state_is_tuple=False
    ),
}


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "sequence_length"])
@pytest.mark.parametrize("time_major", [False, True], ids=["batch_major", "time_major"])
@pytest.mark.parametrize("cell_name", sorted(CELLS))
def test_traced_state_at_t_equals_the_final_state_of_the_first_t_plus_1_steps(cell_name, time_major, with_lengths, rng):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    lengths = np.array(LENGTHS if with_lengths else [TIME] * BATCH)
    with graph_session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, None, DEPTH])
        prefix_lengths = tf.compat.v1.placeholder(tf.int32, [BATCH])
        cell = CELLS[cell_name]()
        x_run = tf.transpose(x, [1, 0, 2]) if time_major else x
        outputs, states, final = tfstate.dynamic_rnn_with_states(
            cell, x_run, sequence_length=lengths if with_lengths else None, time_major=time_major, dtype=tf.float32
        )
        plain_outputs, _ = tf.compat.v1.nn.dynamic_rnn(
            cell,
            x_run,
            sequence_length=lengths if with_lengths else None,
            time_major=time_major,
            dtype=tf.float32,
            scope="plain",
        )
        _, prefix_final = tf.compat.v1.nn.dynamic_rnn(
            cell, x, sequence_length=prefix_lengths, dtype=tf.float32, scope="prefix"
        )
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess)
        outputs, states, final, plain_outputs = sess.run([outputs, states, final, plain_outputs], {x: inputs})
        for t in range(TIME):
            expected = sess.run(prefix_final, {x: inputs[:, : t + 1], prefix_lengths: np.minimum(lengths, t + 1)})
            at_t = tf.nest.map_structure(lambda s: s[t] if time_major else s[:, t], states)
            assert_nested_close(at_t, expected)
    assert_nested_close(outputs, plain_outputs, atol=0)
    assert_nested_close(tf.nest.map_structure(lambda s: s[-1] if time_major else s[:, -1], states), final, atol=0)


def test_trace_keeps_the_cells_variable_names():
    with graph_session():
        tfstate.dynamic_rnn_with_states(CELLS["multi_lstm_gru"](), tf.zeros([2, 3, DEPTH]), dtype=tf.float32)
        names = [v.op.name for v in tf.compat.v1.global_variables()]
    assert names[0] == "rnn/multi_rnn_cell/cell_0/lstm_cell/kernel"
    assert names[-1] == "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/bias"


def test_layout_helpers_convert_concatenated_states_both_ways(rng):
    with graph_session() as sess:
        cell = CELLS["concat_state"]()
        _, states, final = tfstate.dynamic_rnn_with_states(cell, tf.constant(rng.randn(2, 3, DEPTH)), dtype=tf.float64)
        as_tuple = tfstate.state_to_tuple(final, cell)
        assert tfstate.tuple_layout(cell) == (tfstate.LSTMStateTuple(4, 4), 3)
        sess.run(tf.compat.v1.global_variables_initializer())
        final, states, as_tuple = sess.run([final, states, as_tuple])
    np.testing.assert_array_equal(as_tuple[0].c, final[:, :4])
    np.testing.assert_array_equal(as_tuple[0].h, final[:, 4:8])
    np.testing.assert_array_equal(as_tuple[1], final[:, 8:])
    np.testing.assert_array_equal(tfstate.state_to_concat(as_tuple), final)
    traced = tfstate.state_to_tuple(states, cell)  # NumPy, with a time axis
    np.testing.assert_array_equal(traced[0].h[:, -1], final[:, 4:8])
    with pytest.raises(ValueError, match=r"11 wide \(4 \+ 4 \+ 3\); got width 10"):
        tfstate.state_to_tuple(final[:, :10], cell)


class Generator:
    """A trained-style graph (cell + dense head), generation with tfstate, and the seed's one-step graph."""

    def __init__(self, sess, num_steps=60):
        self.sess = sess
        self.cell = tfstate.MultiRNNCell([tfstate.LSTMCell(8), tfstate.GRUCell(6)])
        self.x = tf.compat.v1.placeholder(tf.float32, [None, None, DEPTH])
        self.train = tfstate.stateful_dynamic_rnn(self.cell, self.x)
        tfstate.layers.dense(self.train.outputs, DEPTH, name="head")
        self.next_input = lambda output: tfstate.layers.dense(output, DEPTH, name="head", reuse=True)
        self.first = tf.compat.v1.placeholder(tf.float32, [None, DEPTH])
        self.trainable_before = list(tf.compat.v1.trainable_variables())
        self.num_steps = num_steps
        self.outputs, self.final = tfstate.generate(self.cell, self.first, num_steps, self.next_input)
        self.trainable_after = list(tf.compat.v1.trainable_variables())
        # the seed's way: one session.run per step, output and state fed back
        self.step_state = tf.nest.map_structure(
            lambda s: tf.compat.v1.placeholder(tf.float32, [None, s]), self.cell.state_size
        )
        self.step_output, self.step_new_state = self.cell(self.first, self.step_state)
        self.step_next = self.next_input(self.step_output)
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess, scale=0.6)
        self.stateful = tfstate.StatefulSession(sess, self.train)

    def python_loop(self, first, state, steps):
        outputs, inputs = [], first
        for _ in range(steps):
            feed = {self.first: inputs}
            feed.update(zip(tf.nest.flatten(self.step_state), tf.nest.flatten(state)))
            output, state, inputs = self.sess.run([self.step_output, self.step_new_state, self.step_next], feed)
            outputs.append(output)
        return np.stack(outputs, axis=1), state


def test_generate_equals_the_per_step_session_loop_and_adds_no_trainable_variable(rng):
    first = rng.randn(BATCH, DEPTH).astype(np.float32)
    with graph_session() as sess:
        gen = Generator(sess)
        outputs, final = sess.run([gen.outputs, gen.final], {gen.first: first})
        zeros = tf.nest.map_structure(lambda s: np.zeros([BATCH, s], np.float32), gen.cell.state_size)
        expected_outputs, expected_final = gen.python_loop(first, zeros, gen.num_steps)
    assert outputs.shape == (BATCH, 60, 6)
    assert_nested_close(outputs, expected_outputs)
    assert_nested_close(final, expected_final)
    assert gen.trainable_after == gen.trainable_before


def test_generate_continues_a_carried_stream_and_takes_num_steps_at_run_time(rng):
    first = rng.randn(BATCH, DEPTH).astype(np.float32)
    with graph_session() as sess:
        gen = Generator(sess)
        steps = tf.compat.v1.placeholder(tf.int32, [])
        outputs, final = tfstate.generate(gen.cell, gen.first, steps, gen.next_input, initial_state=gen.train)
        keep_generated = gen.train.state.keep(final)
        gen.stateful.run(gen.train.outputs, {gen.x: rng.randn(BATCH, 5, DEPTH)}, step=0)
        carried = gen.stateful.get_state()[0]
        for num_steps in (1, 7, 23):
            got = sess.run(outputs, {gen.first: first, steps: num_steps})  # gen.x need not be fed
            expected, _ = gen.python_loop(first, carried, num_steps)
            assert_nested_close(got, expected)
        got, _ = sess.run([outputs, keep_generated], {gen.first: first, steps: 4})
        expected, expected_final = gen.python_loop(first, carried, 4)
        assert_nested_close(gen.stateful.get_state()[0], expected_final)
        fresh, _ = sess.run([outputs, final], {gen.first: first, steps: 4, gen.train.step: 0})
        zeros = tf.nest.map_structure(np.zeros_like, carried)
        assert_nested_close(fresh, gen.python_loop(first, zeros, 4)[0])


def test_generate_errors_name_what_was_expected_and_given(rng):
    with graph_session() as sess:
        gen = Generator(sess, num_steps=3)
        with pytest.raises(
            ValueError,
            match=r"next_input_fn must return the cell's input shape \(None, 4\).*"
            r"returned \(None, 5\)",
        ):
            tfstate.generate(gen.cell, gen.first, 3, lambda output: tfstate.layers.dense(output, 5))
        with pytest.raises(ValueError, match=r"num_steps >= 1; got 0"):
            tfstate.generate(gen.cell, gen.first, 0, gen.next_input)
        with pytest.raises(ValueError, match=r"generate's initial_state must be structured like the state_size"):
            tfstate.generate(gen.cell, gen.first, 3, gen.next_input, initial_state=tf.zeros([2, 14]))
        with pytest.raises(ValueError, match=r"generate's initial_state must have parts of shape \[batch\] \+ \[6\]"):
            bad = (tfstate.LSTMStateTuple(tf.zeros([2, 8]), tf.zeros([2, 8])), tf.zeros([2, 5]))
            tfstate.generate(gen.cell, gen.first, 3, gen.next_input, initial_state=bad)
        steps = tf.compat.v1.placeholder(tf.int32, [])
        outputs, _ = tfstate.generate(gen.cell, gen.first, steps, gen.next_input)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"num_steps >= 1; got -2"):
            sess.run(outputs, {gen.first: rng.randn(BATCH, DEPTH), steps: -2})


def test_generate_and_trace_refuse_eager_mode():
    with pytest.raises(RuntimeError, match=r"generate builds a TF1 \(session\) graph"):
        tfstate.generate(tfstate.GRUCell(2), tf.zeros([1, 2]), 3, lambda o: o)
    with pytest.raises(RuntimeError, match=r"dynamic_rnn_with_states builds a TF1"):
        tfstate.dynamic_rnn_with_states(tfstate.GRUCell(2), tf.zeros([1, 2, 2]), dtype=tf.float32)


def test_compiled_generate_equals_the_plain_loop_and_continues_a_carried_stream(rng):
    first = rng.randn(BATCH, DEPTH).astype(np.float32)
    with graph_session() as sess:
        gen = Generator(sess, num_steps=9)
        compiled, compiled_final = tfstate.generate(gen.cell, gen.first, 9, gen.next_input, jit_compile=True)
        steps = tf.compat.v1.placeholder(tf.int32, [])
        carried, carried_final = tfstate.generate(gen.cell, gen.first, steps, gen.next_input, initial_state=gen.train)
        carried_xla, carried_xla_final = tfstate.generate(
            gen.cell, gen.first, steps, gen.next_input, initial_state=gen.train, jit_compile=True, max_steps=12
        )
        gen.stateful.run(gen.train.outputs, {gen.x: rng.randn(BATCH, 5, DEPTH)}, step=0)
        got, expected = sess.run([(compiled, compiled_final), (gen.outputs, gen.final)], {gen.first: first})
        assert_nested_close(got, expected)
        for num_steps in (1, 5, 12):
            got, expected = sess.run(
                [(carried_xla, carried_xla_final), (carried, carried_final)], {gen.first: first, steps: num_steps}
            )
            assert got[0].shape == (BATCH, num_steps, 6)
            assert_nested_close(got, expected)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"max_steps=12; the run fed num_steps=13"):
            sess.run(carried_xla, {gen.first: first, steps: 13})


def test_compiled_generate_of_fused_cells_equals_the_lstm_cell_loop(rng):
    from tfstate.fused import FusedMultiRNNCell, LSTMBlockCell

    first = rng.randn(BATCH, DEPTH).astype(np.float32)
    results = []
    for make in (
        lambda: tfstate.MultiRNNCell([tfstate.LSTMCell(8), tfstate.LSTMCell(8)]),
        lambda: FusedMultiRNNCell([LSTMBlockCell(8), LSTMBlockCell(8)]),
    ):
        with graph_session() as sess:
            cell = make()
            x = tf.constant(first)
            tfstate.layers.dense(tf.zeros([1, 8]), DEPTH, activation=tf.tanh, name="head")

            def next_input(output):
                return tfstate.layers.dense(output, DEPTH, activation=tf.tanh, name="head", reuse=True)

            plain = tfstate.generate(cell, x, 15, next_input)
            compiled = tfstate.generate(cell, x, 15, next_input, jit_compile=True)
            sess.run(tf.compat.v1.global_variables_initializer())
            randomize_variables(sess, scale=0.6)
            plain, compiled = sess.run([plain, compiled])
        assert_nested_close(compiled, plain)
        results.append(plain)
    assert_nested_close(results[1], results[0])


def test_generate_with_a_sampling_character_model(rng):
    vocabulary, embedding_size = 7, 5
    with graph_session() as sess:
        embeddings = tf.compat.v1.get_variable("embeddings", [vocabulary, embedding_size])
        cell = tfstate.GRUCell(6)
        tokens = tf.compat.v1.placeholder(tf.int32, [None, None])
        outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, tf.nn.embedding_lookup(embeddings, tokens), dtype=tf.float32)
        tfstate.layers.dense(outputs, vocabulary, name="logits")
        sharpness = tf.compat.v1.placeholder_with_default(1.0, [])

        def logits(output):
            return tfstate.layers.dense(output, vocabulary, name="logits", reuse=True)

        def sample(output):
            token = tf.random.categorical(sharpness * logits(output), 1)[:, 0]
            return tf.nn.embedding_lookup(embeddings, token)

        def greedy(output):
            return tf.nn.embedding_lookup(embeddings, tf.argmax(logits(output), axis=-1))

        first = tf.nn.embedding_lookup(embeddings, tf.zeros([4], tf.int32))
        sampled, _ = tfstate.generate(cell, first, 30, sample)
        chosen, _ = tfstate.generate(cell, first, 30, greedy)
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess, scale=1.5)
        runs = [sess.run(sampled) for _ in range(2)]
        near_greedy, greedy_outputs = sess.run([sampled, chosen], {sharpness: 1e4})
    assert runs[0].shape == (4, 30, 6)
    assert np.abs(runs[0] - runs[1]).max() > 1e-3  # sampling really draws
    np.testing.assert_allclose(near_greedy, greedy_outputs, atol=1e-6)  # a very sharp sampler picks the argmax
