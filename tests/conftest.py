"""Shared helpers: quiet TensorFlow, the cell configurations the suites draw from, small graphs with sessions."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import contextlib
import platform
import threading
import typing

import numpy as np
import pytest
import tensorflow as tf

import tfstate
from tfstate import native

tf.get_logger().setLevel("ERROR")


def _keep_one():
    return tf.compat.v1.placeholder_with_default(1.0, [])


CELLS = {  # configurations built from a namespace: tfstate.rnn_cell, or the TF1 oracle's
    "basic_rnn": lambda m: m.BasicRNNCell(5),
    "basic_rnn_relu": lambda m: m.BasicRNNCell(5, activation=tf.nn.relu),
    "gru": lambda m: m.GRUCell(5),
    "basic_lstm": lambda m: m.BasicLSTMCell(5, forget_bias=0.5),
    "basic_lstm_concat_state": lambda m: m.BasicLSTMCell(5, state_is_tuple=False),
    "lstm": lambda m: m.LSTMCell(5),
    "lstm_peepholes_clip": lambda m: m.LSTMCell(5, use_peepholes=True, cell_clip=0.3, forget_bias=0.7),
    "lstm_projection_clip": lambda m: m.LSTMCell(6, num_proj=3, proj_clip=0.2),
    "lstm_projection_concat_state": lambda m: m.LSTMCell(
        6, num_proj=3, use_peepholes=True, state_is_tuple=False, activation=tf.nn.relu
    ),
    "multi": lambda m: m.MultiRNNCell([m.LSTMCell(5, num_proj=3), m.GRUCell(4), m.BasicLSTMCell(2)]),
    "multi_lstm": lambda m: m.MultiRNNCell([m.LSTMCell(5), m.LSTMCell(4)]),
    "multi_concat_state": lambda m: m.MultiRNNCell(
        [m.LSTMCell(4, state_is_tuple=False), m.GRUCell(3)], state_is_tuple=False
    ),
    "residual": lambda m: m.ResidualWrapper(m.LSTMCell(4)),  # as wide as the tests' inputs
    # Keep probabilities as tensors put every dropout op in the graph; fed 1.0 they are deterministic
    # (random masks are not: the TF1 oracle itself differs run to run inside a while loop).
    "dropout": lambda m: m.DropoutWrapper(
        m.MultiRNNCell([m.LSTMCell(5), m.GRUCell(4)]),
        input_keep_prob=_keep_one(),
        output_keep_prob=_keep_one(),
        state_keep_prob=_keep_one(),
        seed=3,
    ),
    "device": lambda m: m.DeviceWrapper(m.GRUCell(4), "/cpu:0"),
}


@contextlib.contextmanager
def graph_session(seed=0):
    """A fresh graph (with a fixed graph-level seed) and a session on it."""
    with tf.Graph().as_default() as graph:
        tf.compat.v1.set_random_seed(seed)
        with tf.compat.v1.Session(graph=graph) as sess:
            yield sess


def variable_values(sess):
    """{name: value} of every global variable in the session's graph."""
    variables = tf.compat.v1.global_variables()
    return dict(zip([v.name for v in variables], sess.run(variables)))


def randomize_variables(sess, seed=0, scale=0.5):
    """Loads non-trivial uniform(-scale, scale) values into every global variable; returns them by name."""
    rng = np.random.RandomState(seed)
    values = {}
    for variable in tf.compat.v1.global_variables():
        value = rng.uniform(-scale, scale, variable.shape.as_list()).astype(variable.dtype.as_numpy_dtype)
        variable.load(value, sess)
        values[variable.name] = value
    return values


def load_variables(sess, values):
    """Loads {name: value} into the global variables of the same names (all must be present)."""
    variables = {v.name: v for v in tf.compat.v1.global_variables()}
    assert sorted(variables) == sorted(values)
    for name, value in values.items():
        variables[name].load(value, sess)


class RunResult(typing.NamedTuple):
    """What `run_rnn` computed (slices such as `result[:3]` compare the first fields of two runs)."""

    outputs: np.ndarray
    final: object  # the final state, nested like the cell's state
    gradients: list  # of a loss of outputs and final state, w.r.t. inputs then variables (empty unless asked)
    values: dict  # {variable name: value} the run used
    op_types: set  # every op type in the graph


def run_rnn(inputs, make_cell, lengths=None, time_major=False, values=None, gradients=False, unknown_length=False):
    """The cell's `unroll` (or dynamic_rnn for plain cells) inside scope "rnn" from a zero state: a `RunResult`.

    Variables get `values` (by name) or fresh random ones; `unknown_length` hides the time
    dimension from the graph (as a placeholder of shape [B, None, D] would).
    """
    with graph_session() as sess:
        cell = make_cell()
        batch = inputs.shape[1 if time_major else 0]
        x = tf.constant(inputs)
        if unknown_length:
            shape = list(inputs.shape)
            shape[0 if time_major else 1] = None
            x = tf.compat.v1.placeholder_with_default(x, shape)
        if hasattr(cell, "unroll"):
            with tf.compat.v1.variable_scope("rnn"):  # where dynamic_rnn puts its variables
                outputs, final = cell.unroll(
                    x, cell.zero_state(batch, tf.float32), sequence_length=lengths, time_major=time_major
                )
        else:
            outputs, final = tf.compat.v1.nn.dynamic_rnn(
                cell, x, sequence_length=lengths, time_major=time_major, dtype=tf.float32
            )
        types = {op.type for op in sess.graph.get_operations()}
        variables = sorted(tf.compat.v1.global_variables(), key=lambda v: v.name)
        loss = tf.reduce_sum(outputs * tf.sin(outputs)) + tf.add_n(
            [tf.reduce_sum(s * s) for s in tf.nest.flatten(final)]
        )
        grads = tf.gradients(loss, [x] + variables, unconnected_gradients="zero") if gradients else []
        if values is None:
            values = randomize_variables(sess, scale=0.2)
        else:
            load_variables(sess, values)
        outputs, final, grads = sess.run((outputs, final, grads))
        return RunResult(outputs, final, grads, values, types)


def assert_nested_close(actual, expected, atol=1e-5):
    tf.nest.assert_same_structure(expected, actual, check_types=False)
    for a, e in zip(tf.nest.flatten(actual), tf.nest.flatten(expected)):
        np.testing.assert_allclose(a, e, atol=atol, rtol=0)


@pytest.fixture
def rng():
    return np.random.RandomState(1234)


class CountingCell(tfstate.RNNCell):
    """A TF1-style custom cell whose state counts its steps twice (c and h): a torn state has c != h."""

    @property
    def state_size(self):
        return tfstate.LSTMStateTuple(1, 1)

    @property
    def output_size(self):
        return 1

    def call(self, inputs, state):
        c, h = state
        step = 1 + inputs  # the inputs are zeros; adding them makes the run wait for them
        return c + step, tfstate.LSTMStateTuple(c + step, h + step)


class NestedInputsCell(tfstate.RNNCell):
    """A TF1-style custom cell with nested inputs (a, b): state' = state / 2 + a + b, its output the new state."""

    @property
    def state_size(self):
        return 2

    @property
    def output_size(self):
        return 2

    def call(self, inputs, state):
        a, b = inputs
        state = state / 2 + a + b
        return state, state


def nested_inputs_recurrence(a, b, state, resets=None):
    """NumPy oracle of `NestedInputsCell` over `[batch, time, ...]` inputs: (outputs, final state)."""
    outputs = np.zeros(a.shape[:2] + (2,), np.float32)
    for t in range(a.shape[1]):
        if resets is not None:
            state = np.where(resets[0][:, t, None], resets[1], state)
        state = state / 2 + a[:, t] + b[:, t]
        outputs[:, t] = state
    return outputs, state


def in_threads(count, target):
    """Runs `target(index)` in `count` threads; fails if one raised or hung."""
    errors = []

    def guarded(index):
        try:
            target(index)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    assert not errors, errors


# Where the compiled kernel can be built at all (Linux and a C++ compiler), every variant this CPU runs is tested.
buildable = platform.system() == "Linux" and native._compiler() is not None


@pytest.fixture(params=native.variants() if buildable else [])
def isa(request, monkeypatch):
    """Runs a test once per kernel variant this CPU runs (avx512, avx2, portable), forced by TFSTATE_NATIVE_ISA."""
    monkeypatch.setenv("TFSTATE_NATIVE_ISA", request.param)
    return request.param
