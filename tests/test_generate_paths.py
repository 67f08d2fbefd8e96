"""generate's choice of path: one XLA cluster by default where it compiles and computes the same, else the
while_loop of TF ops (the oracle here: `jit_compile=False`, the same computation with plain TF ops)."""

import logging

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_nested_close, graph_session, randomize_variables

import tfstate
from tfstate.fused import FusedMultiRNNCell, LSTMBlockCell, LSTMBlockFusedCell
from tfstate.generation import CHUNK_STEPS

BATCH, DEPTH = 3, 4


def compiled_calls(graph):
    """How many calls of an XLA cluster the graph holds, in its ops or in the functions they run (loop bodies)."""
    nodes = [op.node_def for op in graph.get_operations()]
    nodes += [node for function in graph.as_graph_def().library.function for node in function.node_def]
    return sum(1 for node in nodes if "_XlaMustCompile" in node.attr and node.attr["_XlaMustCompile"].b)


def head(output):
    return tfstate.layers.dense(output, DEPTH, activation=tf.tanh, name="head", reuse=tf.compat.v1.AUTO_REUSE)


CELLS = {
    "lstm": lambda: tfstate.LSTMCell(5),
    "gru": lambda: tfstate.GRUCell(5),
    "multi_lstm_gru": lambda: tfstate.MultiRNNCell([tfstate.LSTMCell(5), tfstate.GRUCell(4)]),
    "lstm_block_peepholes_clip": lambda: LSTMBlockCell(5, use_peephole=True, cell_clip=0.4),
    "fused_multi": lambda: FusedMultiRNNCell([LSTMBlockCell(5), LSTMBlockCell(4)]),
    "lstm_block_fused": lambda: LSTMBlockFusedCell(5),
}


@pytest.mark.parametrize("cell_name", sorted(CELLS))
def test_default_generate_runs_one_xla_cluster_and_equals_the_while_loop(cell_name, rng):
    first = rng.randn(BATCH, DEPTH).astype(np.float32)
    with graph_session() as sess:
        cell = CELLS[cell_name]()
        x = tf.compat.v1.placeholder(tf.float32, [None, DEPTH])
        steps = tf.compat.v1.placeholder(tf.int32, [])
        loop = tfstate.generate(cell, x, steps, head, jit_compile=False)
        assert compiled_calls(sess.graph) == 0
        trainable = tf.compat.v1.trainable_variables()
        by_int = tfstate.generate(cell, x, 9, head)
        by_tensor = tfstate.generate(cell, x, steps, head)  # CHUNK_STEPS steps a compiled call
        assert compiled_calls(sess.graph) == 2
        assert by_int[0].shape.as_list() == [None, 9, cell.output_size]
        assert by_tensor[0].shape.as_list() == loop[0].shape.as_list() == [None, None, cell.output_size]
        assert tf.compat.v1.trainable_variables() == trainable
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess, scale=0.6)
        ops = len(sess.graph.get_operations())
        assert_nested_close(sess.run(by_int, {x: first}), sess.run(loop, {x: first, steps: 9}))
        for num_steps in (1, 2, CHUNK_STEPS + 1, CHUNK_STEPS + 2, 2 * CHUNK_STEPS + 5):
            got, expected = sess.run([by_tensor, loop], {x: first, steps: num_steps})
            assert got[0].shape == (BATCH, num_steps, cell.output_size)
            assert_nested_close(got, expected)
        assert len(sess.graph.get_operations()) == ops


def _reshape_by_data(output):  # a shape computed from values: XLA needs it at compile time
    rows = tf.cast(tf.reduce_max(output) * 0, tf.int32) + tf.shape(output)[0]
    return tf.reshape(head(output), tf.stack([rows, DEPTH]))


NOT_COMPILABLE = {  # (cell, next_input_fn, what the logged reason names)
    "numpy_function": (
        lambda: tfstate.GRUCell(5),
        lambda output: tf.numpy_function(np.tanh, [head(output)], tf.float32, stateful=False),
        "PyFuncStateless",
    ),
    "string_op": (
        lambda: tfstate.GRUCell(5),
        lambda output: head(output) + tf.strings.to_number(tf.strings.as_string(output[:, :1])),
        "AsString",
    ),
    "shape_from_values": (lambda: tfstate.GRUCell(5), _reshape_by_data, "must be a compile-time constant"),
    "cell_kernel_without_xla": (lambda: LSTMBlockCell(5, implementation="block"), head, "LSTMBlockCell"),
}


@pytest.mark.parametrize("case", sorted(NOT_COMPILABLE))
def test_default_generate_keeps_the_while_loop_where_xla_cannot_compile_and_logs_why(case, rng, caplog):
    make_cell, next_input, reason = NOT_COMPILABLE[case]
    with graph_session() as sess:
        cell, x = make_cell(), tf.constant(rng.randn(BATCH, DEPTH).astype(np.float32))
        with caplog.at_level(logging.INFO, logger="tfstate"):
            chosen = tfstate.generate(cell, x, 6, next_input)
        assert compiled_calls(sess.graph) == 0
        assert "runs a tf.while_loop" in caplog.text and reason in caplog.text
        loop = tfstate.generate(cell, x, 6, next_input, jit_compile=False)
        forced = tfstate.generate(cell, x, 6, next_input, jit_compile=True)
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess, scale=0.6)
        assert_nested_close(sess.run(chosen), sess.run(loop))
        with pytest.raises(tf.errors.InvalidArgumentError, match=reason):  # why the choice matters
            sess.run(forced)


class CharModel:
    """A character model: GRU over embeddings, logits head; generation feeds back a sampled or the likeliest token."""

    VOCABULARY, STEPS = 7, 30

    def __init__(self, seed=None):
        self.embeddings = tf.compat.v1.get_variable("embeddings", [self.VOCABULARY, 5])
        self.cell = tfstate.GRUCell(6)
        tokens = tf.zeros([4, 3], tf.int32)
        outputs, _ = tf.compat.v1.nn.dynamic_rnn(
            self.cell, tf.nn.embedding_lookup(self.embeddings, tokens), dtype=tf.float32
        )
        tfstate.layers.dense(outputs, self.VOCABULARY, name="logits")
        self.sharpness = tf.compat.v1.placeholder_with_default(1.0, [])
        self.seed = seed
        self.first = tf.nn.embedding_lookup(self.embeddings, tf.zeros([4], tf.int32))

    def logits(self, output):
        return tfstate.layers.dense(output, self.VOCABULARY, name="logits", reuse=True)

    def sample(self, output):
        token = tf.random.categorical(self.sharpness * self.logits(output), 1, seed=self.seed)[:, 0]
        return tf.nn.embedding_lookup(self.embeddings, token)

    def greedy(self, output):
        return tf.nn.embedding_lookup(self.embeddings, tf.argmax(self.logits(output), axis=-1))

    def generate(self, next_input_fn, jit_compile=None):
        return tfstate.generate(self.cell, self.first, self.STEPS, next_input_fn, jit_compile=jit_compile)[0]


def test_unseeded_sampling_runs_compiled_and_draws_from_xlas_generator():
    with tf.Graph().as_default() as graph, tf.compat.v1.Session() as sess:  # no graph seed: draws are not repeatable
        model = CharModel()
        sampled, greedy = model.generate(model.sample), model.generate(model.greedy)
        assert compiled_calls(graph) == 2
        greedy_loop = model.generate(model.greedy, jit_compile=False)
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess, scale=1.5)
        runs = [sess.run(sampled) for _ in range(2)]
        near_greedy, greedy, greedy_loop = sess.run([sampled, greedy, greedy_loop], {model.sharpness: 1e4})
    assert np.abs(runs[0] - runs[1]).max() > 1e-3  # XLA's generator really draws, differently each run
    np.testing.assert_allclose(near_greedy, greedy, atol=1e-6)  # a very sharp sampler picks the argmax
    assert_nested_close(greedy, greedy_loop)


def _seeded_draws(jit_compile):
    """Two fresh sessions on one seeded graph: each one's first sampled generation, and the graph's XLA call count."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        model = CharModel(seed=7)
        sampled = model.generate(model.sample, jit_compile=jit_compile)
        loop = model.generate(model.sample, jit_compile=False)  # the same seeds: TensorFlow draws the same
    draws = []
    for _ in range(2):
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            randomize_variables(sess, scale=1.5)
            draws.append(sess.run([sampled, loop]))
    return draws, compiled_calls(graph)


def test_seeded_sampling_keeps_tensorflows_generator_so_its_draws_repeat(caplog):
    with caplog.at_level(logging.INFO, logger="tfstate"):
        draws, calls = _seeded_draws(jit_compile=None)
    assert calls == 0 and "random ops draw with a seed ('Multinomial' op" in caplog.text
    np.testing.assert_array_equal(draws[0][0], draws[0][1])  # the same as jit_compile=False
    np.testing.assert_array_equal(draws[0][0], draws[1][0])  # and again in a new session
    forced, calls = _seeded_draws(jit_compile=True)
    assert calls == 1
    np.testing.assert_array_equal(forced[0][1], draws[0][1])
    assert np.abs(forced[0][0] - forced[1][0]).max() > 1e-3  # why: XLA ignores the seed


def test_generate_checks_max_steps_on_every_path_and_refuses_a_bad_jit_compile(rng):
    with graph_session() as sess:
        cell, x = tfstate.GRUCell(DEPTH), tf.constant(rng.randn(BATCH, DEPTH).astype(np.float32))
        steps = tf.compat.v1.placeholder(tf.int32, [])
        outputs = [
            tfstate.generate(cell, x, steps, lambda o: o, jit_compile=jit, max_steps=5)[0] for jit in (None, False)
        ]
        sess.run(tf.compat.v1.global_variables_initializer())
        for path in outputs:
            assert sess.run(path, {steps: 5}).shape == (BATCH, 5, DEPTH)
            with pytest.raises(tf.errors.InvalidArgumentError, match=r"max_steps=5; the run fed num_steps=6"):
                sess.run(path, {steps: 6})
        with pytest.raises(ValueError, match=r"jit_compile must be None \(choose\), True or False; got 'auto'"):
            tfstate.generate(cell, x, 3, lambda o: o, jit_compile="auto")
        with pytest.raises(ValueError, match=r"max_steps as an int >= 1 \(or None\); got 0"):
            tfstate.generate(cell, x, steps, lambda o: o, max_steps=0)
        with pytest.raises(ValueError, match=r"num_steps=6, more than max_steps=5; raise max_steps"):
            tfstate.generate(cell, x, 6, lambda o: o, max_steps=5)


def test_default_generate_continues_a_stateful_rnns_stream_like_the_while_loop(rng):
    with graph_session() as sess:
        cell = tfstate.LSTMCell(5)
        x = tf.compat.v1.placeholder(tf.float32, [BATCH, None, DEPTH])
        rnn = tfstate.stateful_dynamic_rnn(cell, x, batch_size=BATCH)
        first, steps = tf.constant(rng.randn(BATCH, DEPTH).astype(np.float32)), tf.compat.v1.placeholder(tf.int32, [])
        chosen = tfstate.generate(cell, first, steps, head, initial_state=rnn)
        assert compiled_calls(sess.graph) == 1
        loop = tfstate.generate(cell, first, steps, head, initial_state=rnn, jit_compile=False)
        keep_generated = rnn.state.keep(chosen[1])
        sess.run([tf.compat.v1.global_variables_initializer(), tf.compat.v1.local_variables_initializer()])
        randomize_variables(sess, scale=0.6)
        session = tfstate.StatefulSession(sess, rnn)
        session.run(rnn.outputs, {x: rng.randn(BATCH, 4, DEPTH)}, step=0)
        got, expected = sess.run([chosen, loop], {steps: 40})
        assert_nested_close(got, expected)
        sess.run(keep_generated, {steps: 40})
        assert_nested_close(session.get_state()[0], got[1])


def test_a_numpy_int_num_steps_is_checked_when_built_and_runs_the_static_path_and_a_bool_is_refused(rng):
    with graph_session() as sess:
        cell, x = tfstate.GRUCell(DEPTH), tf.constant(rng.randn(BATCH, DEPTH).astype(np.float32))
        with pytest.raises(ValueError, match=r"num_steps >= 1; got 0"):
            tfstate.generate(cell, x, np.int64(0), head)  # at build time, as for the int 0
        with pytest.raises(ValueError, match=r"num_steps as an int or an int32 scalar tensor; got True"):
            tfstate.generate(cell, x, True, head)
        numpy_steps, _ = tfstate.generate(cell, x, np.int32(5), head)
        loop, _ = tfstate.generate(cell, x, 5, head, jit_compile=False)
        assert numpy_steps.shape.as_list() == [BATCH, 5, DEPTH]  # the static path: its length known when built
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess, scale=0.6)
        assert_nested_close(*sess.run([numpy_steps, loop]))
