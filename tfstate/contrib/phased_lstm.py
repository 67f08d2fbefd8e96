"""TF1 contrib's `PhasedLSTMCell` (Neil et al. 2016): an LSTM whose units update only in their open phase.

Each step's input is `(time, x)`: time `[batch, 1]` (the timestamp of the step), x `[batch, depth]`.

    i, f = split(sigmoid([x, h_prev (, c_prev)] @ mask_gates/kernel + mask_gates/bias))
    c = f * c_prev + i * tanh([x, h_prev] @ new_input/kernel + new_input/bias)
    h = tanh(c) * sigmoid([x, h_prev (, c)] @ output_gate/kernel + output_gate/bias)     # (…) with peepholes
    phi = ((time - phase) mod period) / period                                         # per unit
    k = 2 phi / r_on            if phi < r_on / 2
        2 - 2 phi / r_on        if phi < r_on
        leak * phi              otherwise                                              # r_on = ratio_on
    c, h = k * c + (1 - k) * c_prev,  k * h + (1 - k) * h_prev

`period` starts at exp(uniform(log(period_init_min), log(period_init_max))), `phase` uniform in
[0, period), `ratio_on` at `ratio_on` (trainable unless `trainable_ratio_on=False`), as in TF1.
The modulo passes gradients to `time - phase` as the identity, as in TF1.
"""

import math

import tensorflow as tf

from tfstate.cells import LSTMStateTuple, LSTMUnitsCell


def _log_uniform_initializer(low, high):
    """exp(uniform(log(low), log(high))): TF1's `_random_exp_initializer`."""

    def initialize(shape, dtype=tf.float32, partition_info=None):
        del partition_info
        return tf.exp(tf.random.uniform(shape, math.log(low), math.log(high), dtype=dtype))

    return initialize


class PhasedLSTMCell(LSTMUnitsCell):
    """Phased LSTM; `call((time, x), state)`. See the module docstring for the equations.

    Variables under `phased_lstm_cell/`: `mask_gates/kernel`, `mask_gates/bias`, `new_input/kernel`,
    `new_input/bias`, `output_gate/kernel`, `output_gate/bias`, `period`, `phase`, `ratio_on`.
    """

    def __init__(
        self,
        num_units,
        use_peepholes=False,
        leak=0.001,
        ratio_on=0.1,
        trainable_ratio_on=True,
        period_init_min=1.0,
        period_init_max=1000.0,
        reuse=None,
    ):
        super().__init__(num_units, reuse=reuse)
        self._use_peepholes = use_peepholes
        self._leak = leak
        self._ratio_on = ratio_on
        self._trainable_ratio_on = trainable_ratio_on
        self._period_init_min = period_init_min
        self._period_init_max = period_init_max

    def _input_depth(self, inputs):
        if not (isinstance(inputs, (tuple, list)) and len(inputs) == 2):
            raise ValueError(
                f"PhasedLSTMCell takes inputs (time, x): time [batch, 1] and x [batch, depth]; got "
                f"{inputs!r}. Feed dynamic_rnn the tuple (times, features)."
            )
        time, features = inputs
        if time.shape.rank != 2 or time.shape[-1] not in (1, None):
            raise ValueError(f"PhasedLSTMCell needs the time of each step as [batch, 1]; got shape {time.shape}.")
        return super()._input_depth(tf.convert_to_tensor(features))

    def _build(self, input_depth, dtype):
        units = self._num_units
        zeros = tf.compat.v1.zeros_initializer()
        peephole = units if self._use_peepholes else 0

        def linear(scope, rows, columns):
            return (
                self._add_variable(f"{scope}/kernel", [rows, columns], dtype),
                self._add_variable(f"{scope}/bias", [columns], dtype, zeros),
            )

        self._mask_gates = linear("mask_gates", input_depth + units + peephole, 2 * units)
        self._new_input = linear("new_input", input_depth + units, units)
        self._output_gate = linear("output_gate", input_depth + units + peephole, units)
        self._period = self._add_variable(
            "period", [units], dtype, _log_uniform_initializer(self._period_init_min, self._period_init_max)
        )
        self._phase = self._add_variable(
            "phase", [units], dtype, tf.compat.v1.random_uniform_initializer(0.0, self._period.initial_value)
        )
        self._ratio = self._add_variable(
            "ratio_on",
            [units],
            dtype,
            tf.compat.v1.constant_initializer(self._ratio_on),
            trainable=self._trainable_ratio_on,
        )

    def _openness(self, time, dtype):
        """k per unit: how far the unit's gate is open at `time` (see the module docstring)."""
        shifted = time - tf.cast(self._phase, time.dtype)
        period = tf.cast(self._period, time.dtype)
        modulo = tf.stop_gradient(tf.math.floormod(shifted, period) - shifted) + shifted
        phi = tf.cast(modulo / period, dtype)
        k_up = 2 * phi / self._ratio
        k = tf.where(phi < self._ratio, 2 - k_up, self._leak * phi)
        return tf.where(phi < 0.5 * self._ratio, k_up, k)

    def call(self, inputs, state):
        time, x = inputs
        c_prev, h_prev = state

        def linear(weights, args):
            kernel, bias = weights
            return tf.nn.bias_add(tf.matmul(tf.concat(args, 1), kernel), bias)

        peephole_c = [c_prev] if self._use_peepholes else []
        input_gate, forget_gate = tf.split(tf.sigmoid(linear(self._mask_gates, [x, h_prev] + peephole_c)), 2, axis=1)
        c = c_prev * forget_gate + input_gate * tf.tanh(linear(self._new_input, [x, h_prev]))
        peephole_c = [c] if self._use_peepholes else []
        h = tf.tanh(c) * tf.sigmoid(linear(self._output_gate, [x, h_prev] + peephole_c))
        k = self._openness(time, c.dtype)
        new_c = k * c + (1 - k) * c_prev
        new_h = k * h + (1 - k) * h_prev
        return new_h, LSTMStateTuple(new_c, new_h)
