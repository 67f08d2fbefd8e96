"""TF1 contrib's convolutional LSTM (Shi et al. 2015): `ConvLSTMCell` and its 1-D, 2-D and 3-D forms.

The LSTM's matrix products become "SAME"-padded, stride-1 convolutions over the spatial axes:

    i, j, f, o = split(conv([x, h], kernel) + biases, channels)   # kernel: kernel_shape + [in + out, 4 * out]
    c = sigmoid(f + forget_bias) * c_prev + sigmoid(i) * tanh(j)
    h = tanh(c) * sigmoid(o)

Inputs are `[batch] + input_shape` per step (`[batch, time] + input_shape` for `dynamic_rnn`), the
state is `LSTMStateTuple(c, h)`, each `[batch] + input_shape[:-1] + [output_channels]`. Variables,
as in TF1: `conv_lstm_cell/kernel` and `conv_lstm_cell/biases` (`conv_2d_lstm_cell/…` for
`Conv2DLSTMCell`, and so on).
"""

import tensorflow as tf

from tfstate.cells import LSTMStateTuple, RNNCell

_CONVOLUTIONS = {1: tf.nn.conv1d, 2: tf.nn.conv2d, 3: tf.nn.conv3d}


class ConvLSTMCell(RNNCell):
    """Convolutional LSTM over `conv_ndims` spatial axes.

    Args:
      conv_ndims: 1, 2 or 3.
      input_shape: the per-step input shape without the batch, e.g. `[height, width, channels]`.
      output_channels: channels of h and c.
      kernel_shape: the convolution window, `conv_ndims` ints.
      use_bias: add `biases` (zeros at first).
      skip_connection: refused: TF1 concatenated the inputs to h, which changes the state's depth
        after the first step, so TF1's cell could not run a second step.
      forget_bias: added to the forget gate.
      initializers: unused, as in TF1.
      name: the variable scope (TF1's default "conv_lstm_cell").
    """

    def __init__(
        self,
        conv_ndims,
        input_shape,
        output_channels,
        kernel_shape,
        use_bias=True,
        skip_connection=False,
        forget_bias=1.0,
        initializers=None,
        name="conv_lstm_cell",
    ):
        super().__init__(name=name)
        if conv_ndims not in _CONVOLUTIONS:
            raise ValueError(f"{type(self).__name__} needs conv_ndims 1, 2 or 3; got {conv_ndims}.")
        if len(input_shape) != conv_ndims + 1:
            raise ValueError(
                f"{type(self).__name__} with conv_ndims={conv_ndims} needs input_shape of "
                f"{conv_ndims + 1} values (spatial sizes and channels); got {list(input_shape)}."
            )
        if len(kernel_shape) != conv_ndims:
            raise ValueError(
                f"{type(self).__name__} with conv_ndims={conv_ndims} needs kernel_shape of "
                f"{conv_ndims} values; got {list(kernel_shape)}."
            )
        if skip_connection:
            raise ValueError(
                f"{type(self).__name__}(skip_connection=True) is not supported: TF1 concatenated the inputs to h, "
                "so the state grew after one step and TF1's cell failed on the second. Concatenate the inputs "
                "to the outputs after the RNN instead."
            )
        self._conv_ndims = conv_ndims
        self._input_shape = list(input_shape)
        self._output_channels = output_channels
        self._kernel_shape = list(kernel_shape)
        self._use_bias = use_bias
        self._forget_bias = forget_bias

    @property
    def state_size(self):
        size = tf.TensorShape(self._input_shape[:-1] + [self._output_channels])
        return LSTMStateTuple(size, size)

    @property
    def output_size(self):
        return tf.TensorShape(self._input_shape[:-1] + [self._output_channels])

    def _input_depth(self, inputs):
        if not inputs.shape[1:].is_compatible_with(self._input_shape):
            raise ValueError(
                f"{type(self).__name__} was built for inputs of shape [batch] + {self._input_shape}; "
                f"got inputs of shape {inputs.shape}."
            )
        return self._input_shape[-1]

    def _build(self, input_depth, dtype):
        out = self._output_channels
        self._kernel = self._add_variable("kernel", self._kernel_shape + [input_depth + out, 4 * out], dtype)
        self._biases = (
            self._add_variable("biases", [4 * out], dtype, tf.compat.v1.zeros_initializer()) if self._use_bias else None
        )

    def call(self, inputs, state):
        c_prev, h_prev = state
        convolve = _CONVOLUTIONS[self._conv_ndims]
        strides = 1 if self._conv_ndims == 1 else [1] * (self._conv_ndims + 2)
        gates = convolve(tf.concat([inputs, h_prev], axis=-1), self._kernel, strides, padding="SAME")
        if self._biases is not None:
            gates = gates + self._biases
        i, j, f, o = tf.split(gates, 4, axis=-1)
        c = tf.sigmoid(f + self._forget_bias) * c_prev + tf.sigmoid(i) * tf.tanh(j)
        h = tf.tanh(c) * tf.sigmoid(o)
        return h, LSTMStateTuple(c, h)


class Conv1DLSTMCell(ConvLSTMCell):
    """`ConvLSTMCell` over one spatial axis: inputs `[batch, length, channels]`, scope `conv_1d_lstm_cell`."""

    def __init__(self, name="conv_1d_lstm_cell", **kwargs):
        super().__init__(conv_ndims=1, name=name, **kwargs)


class Conv2DLSTMCell(ConvLSTMCell):
    """`ConvLSTMCell` over two spatial axes: inputs `[batch, height, width, channels]`, scope `conv_2d_lstm_cell`."""

    def __init__(self, name="conv_2d_lstm_cell", **kwargs):
        super().__init__(conv_ndims=2, name=name, **kwargs)


class Conv3DLSTMCell(ConvLSTMCell):
    """`ConvLSTMCell` over three axes: inputs `[batch, depth, height, width, channels]`, scope `conv_3d_lstm_cell`."""

    def __init__(self, name="conv_3d_lstm_cell", **kwargs):
        super().__init__(conv_ndims=3, name=name, **kwargs)
