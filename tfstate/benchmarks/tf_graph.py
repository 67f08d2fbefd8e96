"""The TensorFlow graph-mode workloads: each builder returns a `run_once` callable (one chunk or one generation).

Every workload gets its own graph and session, so op counts and caches do not mix.
"""

import numpy as np
import tensorflow as tf

import tfstate
from tfstate.fused import FusedMultiRNNCell, GRUBlockCellV2, LSTMBlockCell

v1 = tf.compat.v1


def _cell(config, fast, implementation="auto", gru=False):
    """The workload's cell: LSTMs (`LSTMBlockCell` on the fast path, else `LSTMCell`) or GRUs, one per layer.

    GRUs are `GRUBlockCellV2` on the fast path (with `implementation`), else `GRUCell`, which
    `tfstate.dynamic_rnn` also runs over the whole chunk (the plain baselines step it by TF1's dynamic_rnn).
    """
    if gru:
        make = (
            (lambda: GRUBlockCellV2(config.hidden, implementation=implementation))
            if fast
            else (lambda: tfstate.GRUCell(config.hidden))
        )
    elif fast:
        make = lambda: LSTMBlockCell(config.hidden, implementation=implementation)
    else:
        make = lambda: tfstate.LSTMCell(config.hidden)
    if config.layers == 1:
        return make()
    cells = [make() for _ in range(config.layers)]
    return FusedMultiRNNCell(cells) if fast else tfstate.MultiRNNCell(cells)


def _session(graph):
    with graph.as_default():
        sess = v1.Session(graph=graph)
        sess.run([v1.global_variables_initializer(), v1.local_variables_initializer()])
    return sess


def dynamic_rnn_zero_state(config, inputs, gru=False):
    """Plain TF1 code: `dynamic_rnn` + LSTMCell (or GRUCell) from a zero state, nothing carried (the baseline)."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.constant(inputs)
        outputs, _ = v1.nn.dynamic_rnn(_cell(config, False, gru=gru), x, dtype=tf.float32)
    sess = _session(graph)
    return lambda: sess.run(outputs), sess


def feed_dict_round_trip(config, inputs):
    """The classic recipe: the final state fetched to NumPy and fed back as the next initial state."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.constant(inputs)
        cell = _cell(config, False)
        initial = tf.nest.map_structure(lambda size: v1.placeholder(tf.float32, [config.batch, size]), cell.state_size)
        outputs, final = v1.nn.dynamic_rnn(cell, x, initial_state=initial)
    sess = _session(graph)
    flat_initial = tf.nest.flatten(initial)
    state = [np.zeros(p.shape.as_list(), np.float32) for p in flat_initial]

    def run_once():
        _, new_state = sess.run((outputs, tf.nest.flatten(final)), dict(zip(flat_initial, state)))
        state[:] = new_state

    return run_once, sess


def stateful(config, inputs, fast=False, implementation="auto", gru=False):
    """tfstate: `stateful_dynamic_rnn`, fetching outputs and the keep op (state stays in variables)."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.constant(inputs)
        rnn = tfstate.stateful_dynamic_rnn(_cell(config, fast, implementation, gru), x, batch_size=config.batch)
    sess = _session(graph)
    fetches = (rnn.outputs, rnn.keep)
    return (lambda: sess.run(fetches)), sess, rnn


def stateful_session(config, inputs):
    """tfstate: `StatefulSession.run`, which keeps the state only if the whole run succeeded (two session runs)."""
    _, sess, rnn = stateful(config, inputs)
    session = tfstate.StatefulSession(sess, rnn)
    return (lambda: session.run(rnn.outputs)), sess


def training_step(config, inputs, fast=False, implementation="auto", gru=False):
    """One SGD step on a chunk (forward, backward, update) with the state kept: truncated backprop.

    Returns `(run_once, session, fetches)`. The plain variant steps the cell with TF1's `dynamic_rnn`
    from an `RNNState` (a GRUCell would otherwise take the whole-chunk path).
    """
    graph = tf.Graph()
    with graph.as_default():
        x = tf.constant(inputs)
        cell = _cell(config, fast, implementation, gru)
        if fast:
            rnn = tfstate.stateful_dynamic_rnn(cell, x, batch_size=config.batch)
            outputs, keep = rnn.outputs, rnn.keep
        else:
            state = tfstate.RNNState(cell, config.batch)
            outputs, final = v1.nn.dynamic_rnn(cell, x, initial_state=state.initial_state)
            keep = state.keep(final)
        loss = tf.reduce_mean(tf.square(outputs))
        train = v1.train.GradientDescentOptimizer(1e-3).minimize(loss)
    sess = _session(graph)
    fetches = (train, keep)
    return (lambda: sess.run(fetches)), sess, fetches


def op_count_check(config, inputs, repeats):
    """Runs keep, reset, the step flag and row resets `repeats` times; returns the op counts before/after."""
    run_once, sess, rnn = stateful(config, inputs)
    graph = sess.graph
    before = len(graph.get_operations())
    rows = np.zeros([config.batch], bool)
    rows[0] = True
    for index in range(repeats):
        sess.run((rnn.outputs, rnn.keep), {rnn.step: index % 3})
        sess.run((rnn.outputs, rnn.keep), {rnn.reset_rows: rows})
        sess.run(rnn.reset)
    after = len(graph.get_operations())
    sess.close()
    return {"before": before, "after": after, "runs": 3 * repeats}


def gemm_rate(size=1024, repeats=10):
    """FLOP/s of a size^3 float32 matmul in a TF session (the measured peak for the compute bound)."""
    graph = tf.Graph()
    with graph.as_default():
        rng = np.random.RandomState(0)
        a = tf.Variable(rng.rand(size, size).astype(np.float32))
        b = tf.Variable(rng.rand(size, size).astype(np.float32))
        product = tf.reduce_sum(tf.matmul(a, b))
    sess = _session(graph)
    sess.run(product)
    best = None
    import time

    for _ in range(repeats):
        start = time.perf_counter()
        sess.run(product)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    sess.close()
    return 2 * size**3 / best


# --- generation: first input -> LSTM -> dense back to the input size -> next input, gen_steps times ---


def _gen_graph(config, fast):
    cell = _cell(config, fast)
    x0 = tf.constant(np.random.RandomState(1).uniform(-1, 1, (config.batch, config.input)).astype(np.float32))
    with v1.variable_scope("rnn"):
        cell(x0, cell.zero_state(config.batch, tf.float32))  # builds the weights, as training would

    def next_input(output):
        return tfstate.layers.dense(output, config.input, activation=tf.tanh, name="to_input", reuse=v1.AUTO_REUSE)

    return cell, x0, next_input


def generate_feed_loop(config):
    """One `session.run` per step; the state and the next input round-trip through NumPy."""
    graph = tf.Graph()
    with graph.as_default():
        cell, x0, next_input = _gen_graph(config, False)
        x = v1.placeholder(tf.float32, [config.batch, config.input])
        state = tf.nest.map_structure(lambda s: v1.placeholder(tf.float32, [config.batch, s]), cell.state_size)
        output, new_state = cell(x, state)
        fed_back = next_input(output)
    sess = _session(graph)
    first = sess.run(x0)
    flat_state = tf.nest.flatten(state)

    def run_once():
        current = first
        values = [np.zeros(p.shape.as_list(), np.float32) for p in flat_state]
        for _ in range(config.gen_steps):
            current, values = sess.run(
                (fed_back, tf.nest.flatten(new_state)), {x: current, **dict(zip(flat_state, values))}
            )

    return run_once, sess


def generate_step_variables(config):
    """One `session.run` per step, with the state and the next input kept in variables (no feeds)."""
    graph = tf.Graph()
    with graph.as_default():
        cell, x0, next_input = _gen_graph(config, False)
        x_var = tf.Variable(x0, trainable=False)
        state_vars = tf.nest.map_structure(
            lambda s: tf.Variable(tf.zeros([config.batch, s]), trainable=False), cell.state_size
        )
        output, new_state = cell(x_var.read_value(), tf.nest.map_structure(lambda v: v.read_value(), state_vars))
        assigns = [
            v.assign(t, read_value=False) for v, t in zip(tf.nest.flatten(state_vars), tf.nest.flatten(new_state))
        ]
        assigns.append(x_var.assign(next_input(output), read_value=False))
        step = tf.group(*assigns)
        restart = tf.group(x_var.initializer, *[v.initializer for v in tf.nest.flatten(state_vars)])
    sess = _session(graph)

    def run_once():
        sess.run(restart)
        for _ in range(config.gen_steps):
            sess.run(step)

    return run_once, sess


def generate_in_graph(config, fast=False, jit_compile=None):
    """`tfstate.generate`: all steps in one `session.run` (its choice of path by default; `jit_compile` forces one)."""
    graph = tf.Graph()
    with graph.as_default():
        cell, x0, next_input = _gen_graph(config, fast)
        outputs, _ = tfstate.generate(cell, x0, config.gen_steps, next_input, jit_compile=jit_compile)
    sess = _session(graph)
    return (lambda: sess.run(outputs)), sess
