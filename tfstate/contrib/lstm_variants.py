"""TF1 contrib's LSTM variants: `CoupledInputForgetGateLSTMCell`, `GLSTMCell` and `NASCell`, TF1's maths and names.

Each keeps `LSTMStateTuple(c, h)` (h projected to `num_proj` where the cell has a projection):

    CoupledInputForgetGateLSTMCell (Greff et al. 2015), variables W_0, B, W_F_diag, W_O_diag, W_P_0:
        j, f, o = split([x, h] @ W_0 + B)
        f = sigmoid(f + forget_bias [+ W_F_diag * c_prev])
        c = f * c_prev + (1 - f) * activation(j)                      # input gate = 1 - forget gate
        h = sigmoid(o [+ W_O_diag * c]) * activation(c)   [then @ W_P_0, clipped to ±proj_clip]

    GLSTMCell (Kuchaiev & Ginsburg 2017): G independent LSTMs on equal slices of x and h,
        i_g, j_g, f_g, o_g = split([x_g, h_g] @ group<g>/kernel)      then concatenated over g, + bias_i..bias_o
        c = sigmoid(f + forget_bias) * c_prev + sigmoid(i) * tanh(j)
        h = sigmoid(o) * activation(c)                    [then @ projection/kernel]

    NASCell (Zoph & Le 2017): the cell found by architecture search, from
        x @ kernel and h @ recurrent_kernel (+ bias), 8 branches combined in three layers
        [then h @ projection_weights]
"""

import tensorflow as tf

from tfstate.cells import LSTMStateTuple, ProjectedLSTMState, RNNCell, resolve_activation
from tfstate.contrib.layer_norm import add_norm_variables, layer_norm


def _refuse_shards(cell, num_unit_shards, num_proj_shards):
    if num_unit_shards != 1 or num_proj_shards != 1:
        raise ValueError(
            f"{cell}(num_unit_shards={num_unit_shards}, num_proj_shards={num_proj_shards}) split the weights "
            "into several variables; tfstate supports only one shard each (the default, variables W_0 and W_P_0)."
        )


def _lstm_state(state, state_is_tuple, num_units):
    return state if state_is_tuple else (state[:, :num_units], state[:, num_units:])


class CoupledInputForgetGateLSTMCell(ProjectedLSTMState, RNNCell):
    """LSTM whose input gate is one minus its forget gate, with optional peepholes, projection and layer norm.

    TF1's `initializer` argument is accepted and, as in TF1, not used (the weights get TF1's default
    initializer). With `layer_norm=True` the gates and the cell state are layer-normalized
    (`transform/`, `forget/`, `output/`, `state/` gamma and beta) and `B` is created but unused, as in TF1.
    """

    def __init__(
        self,
        num_units,
        use_peepholes=False,
        initializer=None,
        num_proj=None,
        proj_clip=None,
        num_unit_shards=1,
        num_proj_shards=1,
        forget_bias=1.0,
        state_is_tuple=True,
        activation=None,
        reuse=None,
        layer_norm=False,
        norm_gain=1.0,
        norm_shift=0.0,
    ):
        super().__init__(reuse=reuse)
        _refuse_shards("CoupledInputForgetGateLSTMCell", num_unit_shards, num_proj_shards)
        self._num_units = num_units
        self._use_peepholes = use_peepholes
        self._num_proj = num_proj
        self._proj_clip = proj_clip
        self._forget_bias = forget_bias
        self._state_is_tuple = state_is_tuple
        self._activation = resolve_activation(activation)
        self._layer_norm = layer_norm
        self._norm_gain = norm_gain
        self._norm_shift = norm_shift

    def _build(self, input_depth, dtype):
        units = self._num_units
        self._kernel = self._add_variable("W_0", [input_depth + self.output_size, 3 * units], dtype)
        self._bias = self._add_variable("B", [3 * units], dtype, tf.compat.v1.zeros_initializer())
        self._norms = {}
        if self._layer_norm:
            for scope in ("transform", "forget", "output"):
                self._norms[scope] = add_norm_variables(self, scope, units, dtype, self._norm_gain, self._norm_shift)
        if self._use_peepholes:
            self._w_f_diag = self._add_variable("W_F_diag", [units], dtype)
            self._w_o_diag = self._add_variable("W_O_diag", [units], dtype)
        if self._layer_norm:
            self._norms["state"] = add_norm_variables(self, "state", units, dtype, self._norm_gain, self._norm_shift)
        if self._num_proj is not None:
            self._projection = self._add_variable("W_P_0", [units, self._num_proj], dtype)

    def call(self, inputs, state):
        c_prev, m_prev = _lstm_state(state, self._state_is_tuple, self._num_units)
        gates = tf.matmul(tf.concat([inputs, m_prev], 1), self._kernel)
        if not self._layer_norm:
            gates = tf.nn.bias_add(gates, self._bias)
        j, f, o = tf.split(gates, 3, axis=1)
        if self._layer_norm:
            j, f, o = (
                layer_norm(gate, *self._norms[scope])
                for gate, scope in zip((j, f, o), ("transform", "forget", "output"))
            )
        if self._use_peepholes:
            f = f + self._w_f_diag * c_prev
        forget = tf.sigmoid(f + self._forget_bias)
        c = forget * c_prev + (1 - forget) * self._activation(j)
        if self._layer_norm:
            c = layer_norm(c, *self._norms["state"])
        if self._use_peepholes:
            o = o + self._w_o_diag * c
        m = tf.sigmoid(o) * self._activation(c)
        if self._num_proj is not None:
            m = tf.matmul(m, self._projection)
            if self._proj_clip is not None:
                m = tf.clip_by_value(m, -self._proj_clip, self._proj_clip)
        return m, LSTMStateTuple(c, m) if self._state_is_tuple else tf.concat([c, m], 1)


class GLSTMCell(ProjectedLSTMState, RNNCell):
    """Group LSTM: `number_of_groups` LSTM sub-cells, each on its slice of the input and of h.

    `num_units`, `num_proj` and the input depth must divide evenly into the groups. `initializer`
    applies to the group kernels (as in TF1); `activation` applies to the output only, the candidate
    uses tanh (as in TF1).
    """

    def __init__(
        self,
        num_units,
        initializer=None,
        num_proj=None,
        number_of_groups=1,
        forget_bias=1.0,
        activation=None,
        reuse=None,
    ):
        super().__init__(reuse=reuse)
        for name, size in (("num_units", num_units), ("num_proj", num_proj)):
            if size is not None and size % number_of_groups:
                raise ValueError(
                    f"GLSTMCell needs '{name}' divisible by number_of_groups={number_of_groups}; got {name}={size}."
                )
        self._num_units = num_units
        self._initializer = initializer
        self._num_proj = num_proj
        self._groups = number_of_groups
        self._forget_bias = forget_bias
        self._activation = resolve_activation(activation)

    def _input_depth(self, inputs):
        depth = super()._input_depth(inputs)
        if depth % self._groups:
            raise ValueError(
                f"GLSTMCell needs an input depth divisible by number_of_groups={self._groups}; "
                f"got inputs of shape {inputs.shape}."
            )
        return depth

    def _build(self, input_depth, dtype):
        units_per_group = self._num_units // self._groups
        rows = (input_depth + self.output_size) // self._groups
        self._group_kernels = [
            self._add_variable(f"group{g}/kernel", [rows, 4 * units_per_group], dtype, self._initializer)
            for g in range(self._groups)
        ]
        self._biases = [
            self._add_variable(f"bias_{gate}", [self._num_units], dtype, tf.compat.v1.zeros_initializer())
            for gate in "ijfo"
        ]
        if self._num_proj is not None:
            self._projection = self._add_variable("projection/kernel", [self._num_units, self._num_proj], dtype)

    def call(self, inputs, state):
        c_prev, m_prev = state
        x_groups = tf.split(inputs, self._groups, axis=1)
        m_groups = tf.split(m_prev, self._groups, axis=1)
        parts = [
            tf.split(tf.matmul(tf.concat([x, m], 1), kernel), 4, axis=1)
            for x, m, kernel in zip(x_groups, m_groups, self._group_kernels)
        ]
        i, j, f, o = (tf.nn.bias_add(tf.concat(list(gate), 1), bias) for gate, bias in zip(zip(*parts), self._biases))
        c = tf.sigmoid(f + self._forget_bias) * c_prev + tf.sigmoid(i) * tf.tanh(j)
        m = tf.sigmoid(o) * self._activation(c)
        if self._num_proj is not None:
            m = tf.matmul(m, self._projection)
        return m, LSTMStateTuple(c, m)


class NASCell(ProjectedLSTMState, RNNCell):
    """The recurrent cell of Neural Architecture Search (Zoph & Le 2017), with an optional projection.

    Variables: `nas_cell/recurrent_kernel` `[num_proj or num_units, 8 * num_units]`, `kernel`
    `[input_depth, 8 * num_units]`, `bias` (only with `use_bias=True`), `projection_weights`.
    """

    _branches = 8

    def __init__(self, num_units, num_proj=None, use_bias=False, reuse=None, name=None, dtype=None):
        super().__init__(reuse=reuse, name=name, dtype=dtype)
        self._num_units = num_units
        self._num_proj = num_proj
        self._use_bias = use_bias

    def _build(self, input_depth, dtype):
        width = self._branches * self._num_units
        self._recurrent_kernel = self._add_variable("recurrent_kernel", [self.output_size, width], dtype)
        self._kernel = self._add_variable("kernel", [input_depth, width], dtype)
        self._bias = (
            self._add_variable("bias", [width], dtype, tf.compat.v1.zeros_initializer()) if self._use_bias else None
        )
        if self._num_proj is not None:
            self._projection = self._add_variable("projection_weights", [self._num_units, self._num_proj], dtype)

    def call(self, inputs, state):
        c_prev, m_prev = state
        m_matrix = tf.matmul(m_prev, self._recurrent_kernel)
        if self._bias is not None:
            m_matrix = tf.nn.bias_add(m_matrix, self._bias)
        x = tf.split(tf.matmul(inputs, self._kernel), self._branches, axis=1)
        m = tf.split(m_matrix, self._branches, axis=1)
        layer1 = [
            tf.sigmoid(x[0] + m[0]),
            tf.nn.relu(x[1] + m[1]),
            tf.sigmoid(x[2] + m[2]),
            tf.nn.relu(x[3] * m[3]),
            tf.tanh(x[4] + m[4]),
            tf.sigmoid(x[5] + m[5]),
            tf.tanh(x[6] + m[6]),
            tf.sigmoid(x[7] + m[7]),
        ]
        layer2 = [
            tf.tanh(layer1[0] * layer1[1]),
            tf.tanh(layer1[2] + layer1[3]),
            tf.tanh(layer1[4] * layer1[5]),
            tf.sigmoid(layer1[6] + layer1[7]),
        ]
        new_c = tf.tanh(layer2[0] + c_prev) * layer2[1]
        new_m = tf.tanh(new_c * tf.tanh(layer2[2] + layer2[3]))
        if self._num_proj is not None:
            new_m = tf.matmul(new_m, self._projection)
        return new_m, LSTMStateTuple(new_c, new_m)
