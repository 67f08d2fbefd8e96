"""TF1 contrib's independently recurrent cells (Li et al. 2018): `IndRNNCell`, `IndyGRUCell`, `IndyLSTMCell`.

Each unit sees only its own previous state: the recurrent matrix is a row vector `kernel_u`
(initialized uniform in [-1, 1], as in TF1) multiplied elementwise:

    IndRNNCell:    h = activation(x @ kernel_w + kernel_u * h_prev + bias)
    IndyGRUCell:   r, u = split(sigmoid(x @ gates/kernel_w + gates/kernel_u * [h, h] + gates/bias))
                   c = activation(x @ candidate/kernel + candidate/kernel_u * (r * h) + candidate/bias)
                   h = u * h_prev + (1 - u) * c
    IndyLSTMCell:  i, j, f, o = split(x @ kernel_w + kernel_u * [h, h, h, h] + bias)
                   c = c_prev * sigmoid(f + forget_bias) + sigmoid(i) * activation(j)
                   h = activation(c) * sigmoid(o)
"""

import tensorflow as tf

from tfstate.cells import LSTMStateTuple, LSTMUnitsCell, UnitsCell, resolve_activation


def _recurrent_init():
    return tf.compat.v1.random_uniform_initializer(-1.0, 1.0)


class IndRNNCell(UnitsCell):
    """Independently recurrent RNN: variables `ind_rnn_cell/kernel_w`, `kernel_u`, `bias`."""

    def __init__(self, num_units, activation=None, reuse=None, name=None, dtype=None):
        super().__init__(num_units, reuse=reuse, name=name, dtype=dtype)
        self._activation = resolve_activation(activation)

    def _build(self, input_depth, dtype):
        units = self._num_units
        self._kernel_w = self._add_variable("kernel_w", [input_depth, units], dtype)
        self._kernel_u = self._add_variable("kernel_u", [1, units], dtype, _recurrent_init())
        self._bias = self._add_variable("bias", [units], dtype, tf.compat.v1.zeros_initializer())

    def call(self, inputs, state):
        output = self._activation(
            tf.nn.bias_add(tf.matmul(inputs, self._kernel_w) + state * self._kernel_u, self._bias)
        )
        return output, output


class IndyGRUCell(UnitsCell):
    """GRU with diagonal recurrent weights.

    Variables as in TF1: `indy_gru_cell/gates/kernel_w`, `gates/kernel_u`, `gates/bias` (1.0 by
    default), `candidate/kernel` (TF1's name, without `_w`), `candidate/kernel_u`, `candidate/bias`.
    """

    def __init__(
        self,
        num_units,
        activation=None,
        reuse=None,
        kernel_initializer=None,
        bias_initializer=None,
        name=None,
        dtype=None,
    ):
        super().__init__(num_units, reuse=reuse, name=name, dtype=dtype)
        self._activation = resolve_activation(activation)
        self._kernel_initializer = kernel_initializer
        self._bias_initializer = bias_initializer

    def _build(self, input_depth, dtype):
        units, kernel_init, bias_init = self._num_units, self._kernel_initializer, self._bias_initializer
        self._gate_kernel_w = self._add_variable("gates/kernel_w", [input_depth, 2 * units], dtype, kernel_init)
        self._gate_kernel_u = self._add_variable("gates/kernel_u", [1, 2 * units], dtype, _recurrent_init())
        self._gate_bias = self._add_variable(
            "gates/bias", [2 * units], dtype, bias_init or tf.compat.v1.constant_initializer(1.0)
        )
        self._candidate_kernel_w = self._add_variable("candidate/kernel", [input_depth, units], dtype, kernel_init)
        self._candidate_kernel_u = self._add_variable("candidate/kernel_u", [1, units], dtype, _recurrent_init())
        self._candidate_bias = self._add_variable(
            "candidate/bias", [units], dtype, bias_init or tf.compat.v1.zeros_initializer()
        )

    def call(self, inputs, state):
        gates = tf.matmul(inputs, self._gate_kernel_w) + tf.tile(state, [1, 2]) * self._gate_kernel_u
        r, u = tf.split(tf.sigmoid(tf.nn.bias_add(gates, self._gate_bias)), 2, axis=1)
        candidate = tf.matmul(inputs, self._candidate_kernel_w) + (r * state) * self._candidate_kernel_u
        c = self._activation(tf.nn.bias_add(candidate, self._candidate_bias))
        new_h = u * state + (1 - u) * c
        return new_h, new_h


class IndyLSTMCell(LSTMUnitsCell):
    """LSTM with diagonal recurrent weights: variables `indy_lstm_cell/kernel_w`, `kernel_u`, `bias`."""

    def __init__(
        self,
        num_units,
        forget_bias=1.0,
        activation=None,
        reuse=None,
        kernel_initializer=None,
        bias_initializer=None,
        name=None,
        dtype=None,
    ):
        super().__init__(num_units, reuse=reuse, name=name, dtype=dtype)
        self._forget_bias = forget_bias
        self._activation = resolve_activation(activation)
        self._kernel_initializer = kernel_initializer
        self._bias_initializer = bias_initializer

    def _build(self, input_depth, dtype):
        units = self._num_units
        self._kernel_w = self._add_variable("kernel_w", [input_depth, 4 * units], dtype, self._kernel_initializer)
        self._kernel_u = self._add_variable("kernel_u", [1, 4 * units], dtype, _recurrent_init())
        self._bias = self._add_variable(
            "bias", [4 * units], dtype, self._bias_initializer or tf.compat.v1.zeros_initializer()
        )

    def call(self, inputs, state):
        c, h = state
        gates = tf.matmul(inputs, self._kernel_w) + tf.tile(h, [1, 4]) * self._kernel_u
        i, j, f, o = tf.split(tf.nn.bias_add(gates, self._bias), 4, axis=1)
        new_c = c * tf.sigmoid(f + tf.constant(self._forget_bias, dtype=f.dtype)) + tf.sigmoid(i) * self._activation(j)
        new_h = self._activation(new_c) * tf.sigmoid(o)
        return new_h, LSTMStateTuple(new_c, new_h)
