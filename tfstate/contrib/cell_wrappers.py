"""TF1 contrib's wrappers that add weights around a cell: `AttentionCellWrapper` and `HighwayWrapper`.

AttentionCellWrapper (Cheng et al. 2016), attention over the last attn_length outputs:
    x = [x, attns] @ kernel + bias                                   # input_size wide
    output, cell_state = cell(x, cell_state)
    hidden = window @ attention/attn_w;  y = concat(cell_state) @ attention/kernel + attention/bias
    a = softmax(sum(attn_v * tanh(hidden + y)));  attns = sum(a * window)
    output = [output, attns] @ attn_output_projection/kernel + attn_output_projection/bias
    window = window[1:] + [output]
  The state is `(cell_state, attns, window)` (window flattened), concatenated when
  `state_is_tuple=False`. Variables live under `attention_cell_wrapper/`, the cell's inside it.

HighwayWrapper (Srivastava et al. 2015), on a cell whose output is as deep as its input:
    carry = sigmoid(x @ carry_w + carry_b)
    transform = 1 - carry, or sigmoid(x @ transform_w + transform_b) when not coupled
    output = x * carry + cell_output * transform
  As in TF1, `carry_w` … live in the scope the wrapper is called in (`rnn/carry_w` under
  `dynamic_rnn`), beside the cell's own scope.
"""

import tensorflow as tf

from tfstate.cells import CellWrapper, RNNCell


def _concat_linear(args, output_size, dtype):
    """TF1's `_Linear`: `concat(args) @ kernel + bias` with `kernel` and `bias` in the current variable scope."""
    rows = sum(arg.shape[-1] for arg in args)
    kernel = tf.compat.v1.get_variable("kernel", [rows, output_size], dtype=dtype)
    bias = tf.compat.v1.get_variable("bias", [output_size], dtype=dtype, initializer=tf.compat.v1.zeros_initializer())
    return tf.nn.bias_add(tf.matmul(tf.concat(args, 1), kernel), bias)


class AttentionCellWrapper(RNNCell):
    """A cell with attention over a window of its last `attn_length` outputs (TF1 contrib's LSTMA).

    Args:
      cell: the cell to wrap.
      attn_length: the window length (> 0).
      attn_size: the depth of attention vectors and of the output; `cell.output_size` by default.
      attn_vec_size: the depth of the attention's hidden layer; `attn_size` by default.
      input_size: the depth of the cell's projected input; the input depth by default.
      state_is_tuple: `(cell_state, attns, window)` if True, else those concatenated (the cell's
        state must then be a single tensor).

    Raises:
      ValueError: `attn_length` is not positive, or `state_is_tuple=False` with a cell whose state is a tuple.
    """

    def __init__(
        self, cell, attn_length, attn_size=None, attn_vec_size=None, input_size=None, state_is_tuple=True, reuse=None
    ):
        super().__init__(reuse=reuse)
        for required in ("state_size", "output_size", "zero_state"):
            if not hasattr(cell, required):
                raise TypeError(f"AttentionCellWrapper wraps an RNN cell; {cell!r} has no {required}.")
        if tf.nest.is_nested(cell.state_size) and not state_is_tuple:
            raise ValueError(
                f"AttentionCellWrapper(state_is_tuple=False) needs a cell with a single-tensor state; "
                f"the cell's state_size is {cell.state_size}. Use state_is_tuple=True."
            )
        if attn_length <= 0:
            raise ValueError(f"AttentionCellWrapper needs attn_length > 0; got {attn_length}.")
        self._cell = cell
        self._attn_length = attn_length
        self._attn_size = cell.output_size if attn_size is None else attn_size
        self._attn_vec_size = self._attn_size if attn_vec_size is None else attn_vec_size
        self._input_size = input_size
        self._state_is_tuple = state_is_tuple

    @property
    def state_size(self):
        sizes = (self._cell.state_size, self._attn_size, self._attn_size * self._attn_length)
        return sizes if self._state_is_tuple else sum(sizes)

    @property
    def output_size(self):
        return self._attn_size

    def _split_state(self, state):
        if self._state_is_tuple:
            return state
        return tf.split(state, [self._cell.state_size, self._attn_size, self._attn_size * self._attn_length], axis=1)

    def call(self, inputs, state):
        cell_state, attns, window = self._split_state(state)
        window = tf.reshape(window, [-1, self._attn_length, self._attn_size])
        input_size = self._input_size or inputs.shape[-1]
        cell_output, new_cell_state = self._cell(_concat_linear([inputs, attns], input_size, inputs.dtype), cell_state)
        new_attns, window = self._attention(tf.concat(tf.nest.flatten(new_cell_state), 1), window)
        with tf.compat.v1.variable_scope("attn_output_projection"):
            output = _concat_linear([cell_output, new_attns], self._attn_size, inputs.dtype)
        window = tf.reshape(tf.concat([window, output[:, None]], 1), [-1, self._attn_length * self._attn_size])
        new_state = (new_cell_state, new_attns, window)
        return output, new_state if self._state_is_tuple else tf.concat(new_state, 1)

    def _attention(self, query, window):
        """Attention over `window` `[batch, attn_length, attn_size]`: (attended vector, window minus its oldest)."""
        with tf.compat.v1.variable_scope("attention"):
            attn_w = tf.compat.v1.get_variable(
                "attn_w", [1, 1, self._attn_size, self._attn_vec_size], dtype=query.dtype
            )
            attn_v = tf.compat.v1.get_variable("attn_v", [self._attn_vec_size], dtype=query.dtype)
            hidden_features = tf.einsum("bla,av->blv", window, attn_w[0, 0])  # TF1's 1x1 conv2d
            y = _concat_linear([query], self._attn_vec_size, query.dtype)
            scores = tf.reduce_sum(attn_v * tf.tanh(hidden_features + y[:, None]), axis=2)
            weights = tf.nn.softmax(scores)
            return tf.reduce_sum(weights[:, :, None] * window, axis=1), window[:, 1:]


class HighwayWrapper(CellWrapper):
    """Highway connection from a cell's input to its output (the cell's output must be as deep as its input).

    Args:
      cell: the cell to wrap.
      couple_carry_transform_gates: transform = 1 - carry (default), or a gate of its own.
      carry_bias_init: the carry gate's initial bias (the transform gate's is its negative).
    """

    def __init__(self, cell, couple_carry_transform_gates=True, carry_bias_init=1.0):
        super().__init__(cell)
        self._couple_carry_transform_gates = couple_carry_transform_gates
        self._carry_bias_init = carry_bias_init

    @property
    def built(self):
        return self._scope is not None

    @property
    def variables(self):
        return list(getattr(self.cell, "variables", [])) + self._variables

    trainable_variables = variables
    weights = variables
    trainable_weights = variables

    def _wrap(self, inputs, state, call):
        outputs, new_state = call(inputs, state)
        if tf.nest.is_nested(inputs) or not inputs.shape.is_compatible_with(outputs.shape):
            raise ValueError(
                f"HighwayWrapper mixes a cell's input into its output, so they must be single tensors of "
                f"one shape; got inputs {inputs.shape if not tf.nest.is_nested(inputs) else inputs} and "
                f"outputs {outputs.shape}. Give the cell as many units as the input depth."
            )
        if self._scope is None:  # TF1 made the gate weights in the caller's scope
            with tf.compat.v1.variable_scope(
                tf.compat.v1.get_variable_scope(), custom_getter=self._own_variable, auxiliary_name_scope=False
            ) as captured:
                self._scope = captured
                return self._highway(inputs, outputs), new_state
        with tf.compat.v1.variable_scope(self._scope, reuse=True, auxiliary_name_scope=False):
            return self._highway(inputs, outputs), new_state

    def _highway(self, inputs, outputs):
        depth, dtype = inputs.shape[-1], inputs.dtype

        def gate(name, bias_init):
            weight = tf.compat.v1.get_variable(f"{name}_w", [depth, depth], dtype=dtype)
            bias = tf.compat.v1.get_variable(
                f"{name}_b", [depth], dtype=dtype, initializer=tf.compat.v1.constant_initializer(bias_init)
            )
            return tf.sigmoid(tf.nn.bias_add(tf.matmul(inputs, weight), bias))

        carry = gate("carry", self._carry_bias_init)
        if self._couple_carry_transform_gates:
            transform = 1 - carry
        else:
            transform = gate("transform", -self._carry_bias_init)
        return inputs * carry + outputs * transform
