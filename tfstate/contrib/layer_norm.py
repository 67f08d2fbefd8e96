"""TF1 contrib's `LayerNormBasicLSTMCell`, and the layer normalization TF1's contrib cells share.

    i, j, f, o = split([x, h] @ kernel)                        # no bias when layer_norm (the default)
    i, j, f, o = norm_input(i), norm_transform(j), norm_forget(f), norm_output(o)
    g = dropout(activation(j), dropout_keep_prob)               # recurrent dropout (Semeniuta et al.)
    new_c = norm_state(c * sigmoid(f + forget_bias) + sigmoid(i) * g)
    new_h = activation(new_c) * sigmoid(o)

where norm_X(v) = (v - mean(v)) / sqrt(var(v) + 1e-12) * X/gamma + X/beta over each row, as
`tf.contrib.layers.layer_norm` computed it. Variables, as in TF1: `layer_norm_basic_lstm_cell/kernel`
(and `bias` without layer norm), then `input/gamma`, `input/beta`, `transform/…`, `forget/…`,
`output/…`, `state/…`.
"""

import tensorflow as tf

from tfstate.cells import LSTMStateTuple, LSTMUnitsCell, keep_probability, resolve_activation

_NORM_EPSILON = 1e-12  # tf.contrib.layers.layer_norm's variance epsilon


def layer_norm(values, gamma, beta):
    """`tf.contrib.layers.layer_norm` of `[batch, n]` values with the given gain and shift."""
    mean, variance = tf.nn.moments(values, [1], keepdims=True)
    return tf.nn.batch_normalization(values, mean, variance, beta, gamma, _NORM_EPSILON)


def add_norm_variables(cell, scope, size, dtype, gain, shift):
    """Creates `<scope>/gamma` (= gain) and `<scope>/beta` (= shift) in `cell`'s scope; returns them."""
    gamma = cell._add_variable(f"{scope}/gamma", [size], dtype, tf.compat.v1.constant_initializer(gain))
    beta = cell._add_variable(f"{scope}/beta", [size], dtype, tf.compat.v1.constant_initializer(shift))
    return gamma, beta


class LayerNormBasicLSTMCell(LSTMUnitsCell):
    """LSTM with layer normalization (Ba et al. 2016) and recurrent dropout, as TF1 contrib had it.

    See the module docstring for the equations. `dropout_keep_prob` may be a float or a scalar
    tensor (for example a placeholder fed 1.0 at inference); at 1.0 no dropout op is built.
    `input_size` is accepted and ignored, as in TF1.
    """

    _gates = ("input", "transform", "forget", "output")

    def __init__(
        self,
        num_units,
        forget_bias=1.0,
        input_size=None,
        activation=None,
        layer_norm=True,
        norm_gain=1.0,
        norm_shift=0.0,
        dropout_keep_prob=1.0,
        dropout_prob_seed=None,
        reuse=None,
    ):
        super().__init__(num_units, reuse=reuse)
        self._forget_bias = forget_bias
        self._activation = resolve_activation(activation)
        self._layer_norm = layer_norm
        self._norm_gain = norm_gain
        self._norm_shift = norm_shift
        self._keep_prob = keep_probability(dropout_keep_prob, "dropout_keep_prob", "LayerNormBasicLSTMCell")
        self._seed = dropout_prob_seed

    def _build(self, input_depth, dtype):
        units = self._num_units
        self._kernel = self._add_variable("kernel", [input_depth + units, 4 * units], dtype)
        self._bias = None if self._layer_norm else self._add_variable("bias", [4 * units], dtype)
        self._norms = {}
        if self._layer_norm:
            for scope in self._gates + ("state",):
                self._norms[scope] = add_norm_variables(self, scope, units, dtype, self._norm_gain, self._norm_shift)

    def _norm(self, values, scope):
        return layer_norm(values, *self._norms[scope]) if self._layer_norm else values

    def call(self, inputs, state):
        c, h = state
        gates = tf.matmul(tf.concat([inputs, h], 1), self._kernel)
        if self._bias is not None:
            gates = tf.nn.bias_add(gates, self._bias)
        i, j, f, o = (self._norm(gate, scope) for gate, scope in zip(tf.split(gates, 4, axis=1), self._gates))
        g = self._activation(j)
        if not isinstance(self._keep_prob, float) or self._keep_prob < 1:
            g = tf.nn.dropout(g, rate=1 - self._keep_prob, seed=self._seed)
        new_c = self._norm(c * tf.sigmoid(f + self._forget_bias) + tf.sigmoid(i) * g, "state")
        new_h = self._activation(new_c) * tf.sigmoid(o)
        return new_h, LSTMStateTuple(new_c, new_h)
