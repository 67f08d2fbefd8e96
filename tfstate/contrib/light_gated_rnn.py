"""TF1 contrib's lightly gated RNNs: `UGRNNCell`, `IntersectionRNNCell` (Collins et al. 2017), `SRUCell` (Lei et al.).

UGRNNCell:            g_act, c_act = split([x, h] @ kernel + bias)
                      g = sigmoid(g_act + forget_bias)
                      h = g * h_prev + (1 - g) * activation(c_act)
IntersectionRNNCell:  x = x @ in_projection/kernel + in_projection/bias     (only when num_in_proj is set)
                      gh, h_act, gy, y_act = split([x, h] @ kernel + bias)
                      gh, gy = sigmoid(gh + forget_bias), sigmoid(gy + forget_bias)
                      h = gh * h_prev + (1 - gh) * tanh(h_act)               # through time (the state)
                      y = gy * x + (1 - gy) * y_activation(y_act)            # through depth (the output)
SRUCell:              x_bar, f, r, x_tx = split(x @ kernel);  f, r = sigmoid([f, r] + bias)
                      c = f * c_prev + (1 - f) * x_bar
                      h = r * activation(c) + (1 - r) * x_tx;  output h, state c
"""

import tensorflow as tf

from tfstate.cells import UnitsCell, resolve_activation


class UGRNNCell(UnitsCell):
    """Update-gate RNN: one gate choosing between keeping the state and a new value.

    Variables `ugrnn_cell/kernel` `[depth + num_units, 2 * num_units]` (with `initializer`) and `bias`.
    """

    def __init__(self, num_units, initializer=None, forget_bias=1.0, activation=None, reuse=None):
        super().__init__(num_units, reuse=reuse)
        self._initializer = initializer
        self._forget_bias = forget_bias
        self._activation = resolve_activation(activation)

    def _build(self, input_depth, dtype):
        units = self._num_units
        self._kernel = self._add_variable("kernel", [input_depth + units, 2 * units], dtype, self._initializer)
        self._bias = self._add_variable("bias", [2 * units], dtype, tf.compat.v1.zeros_initializer())

    def call(self, inputs, state):
        gate, candidate = tf.split(
            tf.nn.bias_add(tf.matmul(tf.concat([inputs, state], 1), self._kernel), self._bias), 2, axis=1
        )
        g = tf.sigmoid(gate + self._forget_bias)
        new_state = g * state + (1.0 - g) * self._activation(candidate)
        return new_state, new_state


class IntersectionRNNCell(UnitsCell):
    """+RNN: gated through time and through depth; its output feeds the next layer of a deep stack.

    The input depth must equal `num_units`, or `num_in_proj` must be set (TF1: to `num_units`, on the
    first layer) to project the inputs first (`in_projection/kernel`, `in_projection/bias`).
    """

    def __init__(
        self, num_units, num_in_proj=None, initializer=None, forget_bias=1.0, y_activation=tf.nn.relu, reuse=None
    ):
        super().__init__(num_units, reuse=reuse)
        self._num_in_proj = num_in_proj
        self._initializer = initializer
        self._forget_bias = forget_bias
        self._y_activation = resolve_activation(y_activation)

    def _build(self, input_depth, dtype):
        units, init = self._num_units, self._initializer
        self._in_projection = None
        if input_depth != units:
            if not self._num_in_proj:
                raise ValueError(
                    f"IntersectionRNNCell needs inputs as deep as num_units={units}, or num_in_proj={units} to "
                    f"project them; got input depth {input_depth}. Set num_in_proj on the first layer."
                )
            self._in_projection = (
                self._add_variable("in_projection/kernel", [input_depth, units], dtype, init),
                self._add_variable("in_projection/bias", [units], dtype, tf.compat.v1.zeros_initializer()),
            )
        self._kernel = self._add_variable("kernel", [2 * units, 4 * units], dtype, init)
        self._bias = self._add_variable("bias", [4 * units], dtype, tf.compat.v1.zeros_initializer())

    def call(self, inputs, state):
        if self._in_projection is not None:
            inputs = tf.nn.bias_add(tf.matmul(inputs, self._in_projection[0]), self._in_projection[1])
        matrix = tf.nn.bias_add(tf.matmul(tf.concat([inputs, state], 1), self._kernel), self._bias)
        gh, h_act, gy, y_act = tf.split(matrix, 4, axis=1)
        gh = tf.sigmoid(gh + self._forget_bias)
        gy = tf.sigmoid(gy + self._forget_bias)
        new_state = gh * state + (1.0 - gh) * tf.tanh(h_act)
        new_y = gy * inputs + (1.0 - gy) * self._y_activation(y_act)
        return new_y, new_state


class SRUCell(UnitsCell):
    """Simple recurrent unit: no recurrent matrix. Variables `sru_cell/kernel` `[depth, 4 * num_units]`, `bias`.

    As in TF1, the output is h and the state carried to the next step is c.
    """

    def __init__(self, num_units, activation=None, reuse=None, name=None, dtype=None):
        super().__init__(num_units, reuse=reuse, name=name, dtype=dtype)
        self._activation = resolve_activation(activation)

    def _build(self, input_depth, dtype):
        units = self._num_units
        self._kernel = self._add_variable("kernel", [input_depth, 4 * units], dtype)
        self._bias = self._add_variable("bias", [2 * units], dtype, tf.compat.v1.zeros_initializer())

    def call(self, inputs, state):
        x_bar, f_part, r_part, x_tx = tf.split(tf.matmul(inputs, self._kernel), 4, axis=1)
        f, r = tf.split(tf.sigmoid(tf.nn.bias_add(tf.concat([f_part, r_part], 1), self._bias)), 2, axis=1)
        c = f * state + (1.0 - f) * x_bar
        h = r * self._activation(c) + (1.0 - r) * x_tx
        return h, c
