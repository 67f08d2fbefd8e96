"""TF1's `tf.contrib.cudnn_rnn.CudnnCompatibleLSTMCell` / `CudnnCompatibleGRUCell`: cuDNN's RNN maths on any device.

TF1's `CudnnLSTM` / `CudnnGRU` layers saved their weights under the names of these cells, so a
checkpoint written on a GPU restores into them (and into a `MultiRNNCell` or
`stack_bidirectional_dynamic_rnn` of them, under the layer's scope):

    <layer scope>/rnn/multi_rnn_cell/cell_<k>/cudnn_compatible_lstm_cell/kernel, …/bias
    <layer scope>/stack_bidirectional_rnn/cell_<k>/bidirectional_rnn/fw/cudnn_compatible_gru_cell/gates/kernel, …

    CudnnCompatibleLSTMCell: LSTMBlockCell with forget_bias 0 (cuDNN has none) in scope cudnn_compatible_lstm_cell
    CudnnCompatibleGRUCell:  r, u = split(sigmoid([x, h] @ gates/kernel + gates/bias))
                             c = tanh(x @ candidate/input_projection/kernel + candidate/input_projection/bias
                                      + r * (h @ candidate/hidden_projection/kernel + candidate/hidden_projection/bias))
                             h = (1 - u) * c + u * h_prev
      (cuDNN applies the reset gate after the recurrent product, unlike `GRUCell`.)
"""

import tensorflow as tf

from tfstate.cells import GRUCell
from tfstate.fused import LSTMBlockCell


class CudnnCompatibleLSTMCell(LSTMBlockCell):
    """`LSTMBlockCell(num_units, forget_bias=0)` under TF1's scope name `cudnn_compatible_lstm_cell`.

    It is a fused cell, so `tfstate.dynamic_rnn` and `stateful_dynamic_rnn` run it over whole chunks.
    """

    def __init__(self, num_units, reuse=None):
        super().__init__(
            num_units,
            forget_bias=0.0,
            cell_clip=None,
            use_peephole=False,
            reuse=reuse,
            name="cudnn_compatible_lstm_cell",
        )


class CudnnCompatibleGRUCell(GRUCell):
    """GRU with cuDNN's candidate (reset gate applied after the recurrent product), TF1's variable names."""

    def __init__(self, num_units, reuse=None, kernel_initializer=None):
        super().__init__(num_units, reuse=reuse, kernel_initializer=kernel_initializer)

    def _build(self, input_depth, dtype):
        units, init = self._num_units, self._kernel_initializer
        self._gate_kernel = self._add_variable("gates/kernel", [input_depth + units, 2 * units], dtype, init)
        self._gate_bias = self._add_variable("gates/bias", [2 * units], dtype, tf.compat.v1.constant_initializer(1.0))
        self._input_kernel = self._add_variable("candidate/input_projection/kernel", [input_depth, units], dtype, init)
        self._hidden_kernel = self._add_variable("candidate/hidden_projection/kernel", [units, units], dtype, init)
        zeros = tf.compat.v1.zeros_initializer()
        self._input_bias = self._add_variable("candidate/input_projection/bias", [units], dtype, zeros)
        self._hidden_bias = self._add_variable("candidate/hidden_projection/bias", [units], dtype, zeros)

    def call(self, inputs, state):
        gates = tf.nn.bias_add(tf.matmul(tf.concat([inputs, state], 1), self._gate_kernel), self._gate_bias)
        r, u = tf.split(tf.sigmoid(gates), 2, axis=1)
        candidate = tf.nn.bias_add(tf.matmul(inputs, self._input_kernel), self._input_bias)
        candidate += r * tf.nn.bias_add(tf.matmul(state, self._hidden_kernel), self._hidden_bias)
        new_h = (1 - u) * self._activation(candidate) + u * state
        return new_h, new_h
