"""TF1's `tf.contrib.cudnn_rnn` on any device: `CudnnLSTM`, `CudnnGRU`, `CudnnRNNTanh`, `CudnnRNNRelu`, the cells.

TF1's layers ran cuDNN's fused kernel (GPU only) on one opaque weight buffer, and saved that buffer
in a checkpoint as per-layer weights of the cuDNN-compatible cells. These layers are built from
those cells, with those names, so they run anywhere and a TF1 checkpoint restores into them:

    layer(inputs, initial_state, sequence_lengths, time_major=True, training=True)
      unidirectional:  tfstate.dynamic_rnn(FusedMultiRNNCell(cells)) in <scope>/rnn/multi_rnn_cell/cell_<k>/…
      bidirectional:   stack_bidirectional_dynamic_rnn(cells_fw, cells_bw) in
                       <scope>/stack_bidirectional_rnn/cell_<k>/bidirectional_rnn/{fw,bw}/…
      cells:           CudnnCompatibleLSTMCell (cudnn_compatible_lstm_cell/kernel, bias),
                       CudnnCompatibleGRUCell (cudnn_compatible_gru_cell/gates/…, candidate/…),
                       BasicRNNCell with tanh or relu (basic_rnn_cell/kernel, bias)

<scope> is the layer's (`cudnn_lstm`, `cudnn_gru`, … by default). States are as in TF1: a tuple
`(h, c)` for the LSTM, `(h,)` otherwise, each `[num_layers * num_dirs, batch, num_units]` (layer 0
forward, layer 0 backward, layer 1 forward, …; `[batch, num_layers * num_dirs, num_units]` with
`time_major=False`). `dropout` applies to each layer's input except the first's, when `training`.
"""

import tensorflow as tf

from tfstate._checks import require_graph_mode
from tfstate.cells import BasicRNNCell, DropoutWrapper, LSTMStateTuple
from tfstate.contrib.cudnn_compat import CudnnCompatibleGRUCell, CudnnCompatibleLSTMCell
from tfstate.contrib.stack_bidirectional import stack_bidirectional_dynamic_rnn
from tfstate.fused import FusedMultiRNNCell
from tfstate.rnn import dynamic_rnn

CUDNN_RNN_UNIDIRECTION = "unidirectional"
CUDNN_RNN_BIDIRECTION = "bidirectional"
CUDNN_INPUT_LINEAR_MODE = "linear_input"
CUDNN_INPUT_SKIP_MODE = "skip_input"
CUDNN_INPUT_AUTO_MODE = "auto_select"


class _CudnnRNN:
    """The shared body of TF1's cuDNN layers; subclasses say which cell a layer is made of."""

    _default_name = None
    _has_cell_state = False

    def __init__(
        self,
        num_layers,
        num_units,
        input_mode=CUDNN_INPUT_LINEAR_MODE,
        direction=CUDNN_RNN_UNIDIRECTION,
        dropout=0.0,
        seed=None,
        dtype=tf.float32,
        kernel_initializer=None,
        bias_initializer=None,
        name=None,
    ):
        name_of = type(self).__name__
        if direction not in (CUDNN_RNN_UNIDIRECTION, CUDNN_RNN_BIDIRECTION):
            raise ValueError(
                f"{name_of} direction must be '{CUDNN_RNN_UNIDIRECTION}' or '{CUDNN_RNN_BIDIRECTION}'; "
                f"got {direction!r}."
            )
        if input_mode not in (CUDNN_INPUT_LINEAR_MODE, CUDNN_INPUT_SKIP_MODE, CUDNN_INPUT_AUTO_MODE):
            raise ValueError(
                f"{name_of} input_mode must be 'linear_input', 'skip_input' or 'auto_select'; got {input_mode!r}."
            )
        if input_mode == CUDNN_INPUT_SKIP_MODE:
            raise ValueError(
                f"{name_of}(input_mode='skip_input') fed the inputs to the first layer without input "
                "weights; its checkpoints have no compatible-cell form and tfstate does not support it. "
                "Use input_mode='linear_input'."
            )
        dtype = tf.as_dtype(dtype)
        if dtype not in (tf.float16, tf.float32, tf.float64):
            raise ValueError(f"{name_of} supports float16, float32 and float64; got dtype {dtype.name}.")
        self._num_layers = num_layers
        self._num_units = num_units
        self._input_mode = input_mode
        self._direction = direction
        self._dropout = dropout
        self._seed = seed
        self._dtype = dtype
        self._kernel_initializer = kernel_initializer
        self._bias_initializer = bias_initializer or tf.compat.v1.zeros_initializer()
        self._name = name
        self._scope = None
        self._cells = [[self._make_cell() for _ in range(num_layers)] for _ in range(self.num_dirs)]

    def _make_cell(self):
        raise NotImplementedError(f"{type(self).__name__} must say which cell it is made of.")

    num_layers = property(lambda self: self._num_layers)
    num_units = property(lambda self: self._num_units)
    input_mode = property(lambda self: self._input_mode)
    direction = property(lambda self: self._direction)
    num_dirs = property(lambda self: 1 if self._direction == CUDNN_RNN_UNIDIRECTION else 2)
    dtype = property(lambda self: self._dtype)

    @property
    def variables(self):
        """The canonical weights of every layer (and direction), in creation order."""
        return [variable for cells in self._cells for cell in cells for variable in cell.variables]

    trainable_variables = variables
    trainable_weights = variables

    def state_shape(self, batch_size):
        """The shapes of the state tuple's parts (time-major layout)."""
        shape = [self._num_layers * self.num_dirs, batch_size, self._num_units]
        return (shape, shape) if self._has_cell_state else (shape,)

    def _initializer(self, getter, name, *args, **kwargs):
        """Custom getter: TF1's layer initializers (kernels: `kernel_initializer`, biases: zeros by default)."""
        role = name.rsplit("/", 1)[-1]
        if role == "bias" and self._bias_initializer is not None:
            kwargs["initializer"] = self._bias_initializer
        elif role == "kernel" and self._kernel_initializer is not None:
            kwargs["initializer"] = self._kernel_initializer
        return getter(name, *args, **kwargs)

    def __call__(self, inputs, initial_state=None, sequence_lengths=None, time_major=True, training=True):
        """Runs the layer: `(outputs, output_states)` as TF1's; see the module docstring."""
        require_graph_mode(type(self).__name__)
        if initial_state is not None and not isinstance(initial_state, tuple):
            raise TypeError(
                f"{type(self).__name__} needs initial_state as a tuple "
                f"({'(h, c)' if self._has_cell_state else '(h,)'}); got {initial_state!r}."
            )
        inputs = tf.convert_to_tensor(inputs, dtype=self._dtype)
        if inputs.shape.rank != 3 or inputs.shape[-1] is None:
            raise ValueError(f"{type(self).__name__} needs 3-D inputs with a known depth; got shape {inputs.shape}.")
        if self._input_mode == CUDNN_INPUT_AUTO_MODE and inputs.shape[-1] == self._num_units:
            raise ValueError(
                f"{type(self).__name__}(input_mode='auto_select') with inputs as deep as num_units "
                f"({self._num_units}) means 'skip_input', which tfstate does not support; use "
                "input_mode='linear_input'."
            )
        if self._scope is None:
            with tf.compat.v1.variable_scope(
                None, default_name=self._name or self._default_name, custom_getter=self._initializer
            ) as captured:
                self._scope = captured
                return self._run(inputs, initial_state, sequence_lengths, time_major, training)
        with tf.compat.v1.variable_scope(self._scope, reuse=True):
            return self._run(inputs, initial_state, sequence_lengths, time_major, training)

    def _layer_cells(self, direction, training):
        """This direction's cells, each layer after the first with dropout on its input when training."""
        cells = self._cells[direction]
        if not training or not self._dropout:
            return list(cells)
        return cells[:1] + [
            DropoutWrapper(cell, input_keep_prob=1.0 - self._dropout, seed=self._seed) for cell in cells[1:]
        ]

    def _run(self, inputs, initial_state, sequence_lengths, time_major, training):
        batch = tf.shape(inputs)[1 if time_major else 0]
        if initial_state is None:
            initial_state = tuple(tf.zeros(shape, self._dtype) for shape in self.state_shape(batch))
        elif not time_major:
            initial_state = tuple(tf.transpose(part, [1, 0, 2]) for part in initial_state)
        per_layer = self._split_state(initial_state)  # per_layer[direction][layer]
        if self.num_dirs == 1:
            outputs, finals = dynamic_rnn(
                FusedMultiRNNCell(self._layer_cells(0, training)),
                inputs,
                sequence_length=sequence_lengths,
                initial_state=tuple(per_layer[0]),
                time_major=time_major,
            )
            finals = [finals]
        else:
            outputs, finals_fw, finals_bw = stack_bidirectional_dynamic_rnn(
                self._layer_cells(0, training),
                self._layer_cells(1, training),
                inputs,
                initial_states_fw=per_layer[0],
                initial_states_bw=per_layer[1],
                sequence_length=sequence_lengths,
                time_major=time_major,
            )
            finals = [finals_fw, finals_bw]
        output_states = self._join_state(finals)
        if not time_major:
            output_states = tuple(tf.transpose(part, [1, 0, 2]) for part in output_states)
        return outputs, output_states

    def _split_state(self, state):
        """`(h[, c])` stacked over layers and directions -> one cell state per direction and layer."""
        parts = [tf.unstack(part, num=self._num_layers * self.num_dirs) for part in state]
        states = []
        for direction in range(self.num_dirs):
            indices = range(direction, self._num_layers * self.num_dirs, self.num_dirs)
            if self._has_cell_state:
                states.append([LSTMStateTuple(parts[1][i], parts[0][i]) for i in indices])
            else:
                states.append([parts[0][i] for i in indices])
        return states

    def _join_state(self, finals):
        """The inverse of `_split_state`."""
        ordered = [finals[direction][layer] for layer in range(self._num_layers) for direction in range(self.num_dirs)]
        if self._has_cell_state:
            return tf.stack([state.h for state in ordered]), tf.stack([state.c for state in ordered])
        return (tf.stack(ordered),)


class CudnnLSTM(_CudnnRNN):
    """TF1's `CudnnLSTM` layer, from `CudnnCompatibleLSTMCell`s (fused: whole chunks per layer)."""

    _default_name = "cudnn_lstm"
    _has_cell_state = True

    def _make_cell(self):
        return CudnnCompatibleLSTMCell(self._num_units)


class CudnnGRU(_CudnnRNN):
    """TF1's `CudnnGRU` layer, from `CudnnCompatibleGRUCell`s."""

    _default_name = "cudnn_gru"

    def _make_cell(self):
        return CudnnCompatibleGRUCell(self._num_units)


class CudnnRNNTanh(_CudnnRNN):
    """TF1's `CudnnRNNTanh` layer, from `BasicRNNCell`s with tanh."""

    _default_name = "cudnn_rnn_tanh"

    def _make_cell(self):
        return BasicRNNCell(self._num_units, activation=tf.tanh)


class CudnnRNNRelu(_CudnnRNN):
    """TF1's `CudnnRNNRelu` layer, from `BasicRNNCell`s with relu."""

    _default_name = "cudnn_rnn_relu"

    def _make_cell(self):
        return BasicRNNCell(self._num_units, activation=tf.nn.relu)


__all__ = [
    "CudnnLSTM",
    "CudnnGRU",
    "CudnnRNNTanh",
    "CudnnRNNRelu",
    "CudnnCompatibleLSTMCell",
    "CudnnCompatibleGRUCell",
    "CUDNN_RNN_UNIDIRECTION",
    "CUDNN_RNN_BIDIRECTION",
    "CUDNN_INPUT_LINEAR_MODE",
    "CUDNN_INPUT_SKIP_MODE",
    "CUDNN_INPUT_AUTO_MODE",
]
