"""TF1 contrib's fused GRU cells, `GRUBlockCellV2` and `GRUBlockCell`, on TensorFlow's `GRUBlockCell` kernel.

TensorFlow registers no gradient for that kernel (TF1 contrib did), so this module registers one
when it is imported.
"""

import tensorflow as tf

from tfstate.cells import GRUCell


def _gru_block_cell_gradient(op, d_r, d_u, d_c, d_h):
    """Backprop through one `GRUBlockCell` step (TensorFlow registers none for the op; TF1 contrib did).

    Forward: r, u = sigmoid([x, h] @ w_ru + b_ru); c = tanh([x, r * h] @ w_c + b_c);
    new_h = u * h + (1 - u) * c. The op also outputs r, u and c; their gradients are added in.
    """
    x, h, w_ru, w_c, _, _ = op.inputs
    r, u, c, _ = op.outputs
    zeros = tf.zeros_like(h)
    d_r, d_u, d_c, d_h = (zeros if d is None else d for d in (d_r, d_u, d_c, d_h))
    d_c_bar = (d_h * (1 - u) + d_c) * (1 - c * c)
    d_x_rh = tf.matmul(d_c_bar, w_c, transpose_b=True)
    depth = tf.shape(x)[1]
    d_x, d_rh = tf.split(d_x_rh, [depth, -1], axis=1)
    d_r_bar = (d_rh * h + d_r) * r * (1 - r)
    d_u_bar = (d_h * (h - c) + d_u) * u * (1 - u)
    d_ru_bar = tf.concat([d_r_bar, d_u_bar], 1)
    d_x_h = tf.matmul(d_ru_bar, w_ru, transpose_b=True)
    d_x_gates, d_h_gates = tf.split(d_x_h, [depth, -1], axis=1)
    return (d_x + d_x_gates, d_h * u + d_rh * r + d_h_gates,
            tf.matmul(tf.concat([x, h], 1), d_ru_bar, transpose_a=True),
            tf.matmul(tf.concat([x, r * h], 1), d_c_bar, transpose_a=True),
            tf.reduce_sum(d_ru_bar, 0), tf.reduce_sum(d_c_bar, 0))


try:
    tf.RegisterGradient("GRUBlockCell")(_gru_block_cell_gradient)
except KeyError:  # a TensorFlow that registers its own
    pass


class GRUBlockCellV2(GRUCell):
    """TF1 contrib's `GRUBlockCellV2`: a GRU step in TensorFlow's fused `GRUBlockCell` kernel.

    Same maths and variables as `tfstate.GRUCell` (`gru_cell/gates/kernel`, `gates/bias`,
    `candidate/kernel`, `candidate/bias`), so checkpoints are interchangeable:

        r, u = split(sigmoid([x, h] @ gates/kernel + gates/bias))
        new_h = u * h + (1 - u) * tanh([x, r * h] @ candidate/kernel + candidate/bias)

    float32 only, as in TF1. `cell_size` is TF1's deprecated spelling of `num_units`.
    """

    _default_name = "gru_cell"

    def __init__(self, num_units=None, cell_size=None, reuse=None, name="gru_cell", dtype=None):
        if (num_units is None) == (cell_size is None):
            raise ValueError(f"{type(self).__name__} needs exactly one of num_units and cell_size (TF1's old name); "
                             f"got num_units={num_units}, cell_size={cell_size}.")
        super().__init__(num_units if num_units is not None else cell_size, reuse=reuse, name=name, dtype=dtype)

    def _build(self, input_depth, dtype):
        if dtype != tf.float32:
            raise ValueError(f"{type(self).__name__} runs TensorFlow's GRUBlockCell kernel, which is float32 only; "
                             f"the inputs are {dtype.name}. Use tfstate.GRUCell for other dtypes.")
        super()._build(input_depth, dtype)

    def call(self, inputs, state):
        _, _, _, new_h = tf.raw_ops.GRUBlockCell(x=inputs, h_prev=state, w_ru=self._gate_kernel,
                                                 w_c=self._candidate_kernel, b_ru=self._gate_bias,
                                                 b_c=self._candidate_bias)
        return new_h, new_h


class GRUBlockCell(GRUBlockCellV2):
    """TF1 contrib's `GRUBlockCell`: `GRUBlockCellV2` under its older variable names.

    Variables `gru_cell/w_ru`, `b_ru`, `w_c`, `b_c` (what TF1 checkpoints of this cell hold), with
    the same shapes and meaning as `gates/kernel`, `gates/bias`, `candidate/kernel`, `candidate/bias`.
    """

    _variable_names = ("w_ru", "b_ru", "w_c", "b_c")
