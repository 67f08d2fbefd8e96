"""Fused LSTM cells: TF1 contrib's `LSTMBlockCell` / `LSTMBlockFusedCell`, with a fast sequence path.

Same maths and checkpoint layout as `tfstate.LSTMCell` (and TF1's `tf.contrib.rnn` cells):

    i, j, f, o = split([x, h] @ kernel + bias)                          # gate order i, j, f, o
    c = sigmoid(f + forget_bias [+ w_f_diag * c_prev]) * c_prev
        + sigmoid(i [+ w_i_diag * c_prev]) * tanh(j)                     then clip to ±cell_clip
    h = sigmoid(o [+ w_o_diag * c]) * tanh(c)

Variables, as in TF1 contrib: `<scope>/lstm_cell/kernel`, `.../bias` (and `w_i_diag`, `w_f_diag`,
`w_o_diag` with peepholes) for `LSTMBlockCell`; `LSTMBlockFusedCell` names its scope
`lstm_fused_cell` by default (TF1's default; pass name="lstm_cell" to read an LSTMCell checkpoint).

A fused cell is used two ways:

    output, state = cell(x_t, state)                        # one step (what tfstate.generate runs)
    outputs, final = cell.unroll(inputs, state, sequence_length, time_major)   # a whole chunk

`unroll` is what `tfstate.stateful_dynamic_rnn` and `dynamic_rnn_with_states` call. It runs

    xw = inputs @ kernel[:depth] + bias                     # one large matmul for all steps
    for t in range(T):                                      # static when T is known
        c, h = gates(xw[t] + h @ kernel[depth:], c)         # one small matmul + fused gates
    (rows past sequence_length keep their state and output zeros, like dynamic_rnn)

Implementations (the `implementation` argument; "auto" picks the first that applies):

    "native"  tfstate's compiled kernel (`tfstate.native`): float32, units a multiple of 16, a CPU
              with AVX-512F and a C++ compiler, no GPU visible. The fastest on CPU.
    "xla"     the loop above as one XLA cluster, statically unrolled; needs the chunk length at
              graph-build time.
    "block"   TensorFlow's `BlockLSTM` kernel over the whole chunk (float32 / float16).
    "loop"    the loop above as a `tf.while_loop` of TF ops (any dtype).

All four compute the same values (to float rounding) and the same gradients: the native kernel's
gradient recomputes the chunk on the XLA (or loop) path and differentiates that. docs/benchmarks.md
has the measurements.
"""

import tensorflow as tf

from tfstate import native
from tfstate._checks import check_state, require_graph_mode
from tfstate.cells import LSTMStateTuple, MultiRNNCell, RNNCell

_IMPLEMENTATIONS = ("auto", "native", "xla", "block", "loop")
_MAX_STATIC_STEPS = 512  # longer chunks (or unknown lengths) use a loop, not a static unroll


def _gates(xw, c_prev, h_prev, recurrent_kernel, peepholes, forget_bias, cell_clip):
    """One LSTM step given the input part of the gates (`x @ W_x + b`), or all of it when `recurrent_kernel` is None."""
    if recurrent_kernel is not None:
        xw = xw + tf.matmul(h_prev, recurrent_kernel)
    i, j, f, o = tf.split(xw, 4, axis=1)
    if peepholes is not None:
        w_i, w_f, w_o = peepholes
        i = i + w_i * c_prev
        f = f + w_f * c_prev
    c = tf.sigmoid(f + forget_bias) * c_prev + tf.sigmoid(i) * tf.tanh(j)
    if cell_clip is not None:
        c = tf.clip_by_value(c, -cell_clip, cell_clip)
    if peepholes is not None:
        o = o + w_o * c
    return c, tf.sigmoid(o) * tf.tanh(c)


def _recurrence(xw, c, h, recurrent_kernel, peepholes, lengths, forget_bias, cell_clip):
    """Runs the recurrence over time-major `xw` [T, B, 4H]; returns (h for every step [T, B, H], c, h)."""
    steps = xw.shape[0]

    def step(t, c, h):
        new_c, new_h = _gates(xw[t], c, h, recurrent_kernel, peepholes, forget_bias, cell_clip)
        if lengths is None:
            return new_h, new_c, new_h
        valid = tf.expand_dims(t < lengths, 1)
        return (tf.where(valid, new_h, tf.zeros_like(new_h)), tf.where(valid, new_c, c), tf.where(valid, new_h, h))

    if steps is not None and steps <= _MAX_STATIC_STEPS:
        outputs = []
        for t in range(steps):
            output, c, h = step(t, c, h)
            outputs.append(output)
        if not outputs:
            return tf.zeros([0, tf.shape(h)[0], h.shape[1]], h.dtype), c, h
        return tf.stack(outputs), c, h

    total = tf.shape(xw)[0]
    array = tf.TensorArray(h.dtype, size=total, element_shape=h.shape)

    def body(t, c, h, array):
        output, c, h = step(t, c, h)
        return t + 1, c, h, array.write(t, output)

    _, c, h, array = tf.while_loop(lambda t, *_: t < total, body, (tf.constant(0), c, h, array))
    return array.stack(), c, h


def _sequence(inputs, c0, h0, kernel, bias, peepholes, lengths, time_major, forget_bias, cell_clip):
    """The hoisted-projection LSTM over a chunk: returns (outputs like the inputs, c, h)."""
    depth = inputs.shape[-1]
    units = h0.shape[-1]
    if not time_major:
        inputs = tf.transpose(inputs, [1, 0, 2])
    shape = tf.shape(inputs)
    xw = tf.matmul(tf.reshape(inputs, [-1, depth]), kernel[:depth]) + bias
    xw = tf.reshape(xw, tf.stack([shape[0], shape[1], 4 * units]))
    xw.set_shape([inputs.shape[0], inputs.shape[1], 4 * units])
    outputs, c, h = _recurrence(xw, c0, h0, kernel[depth:], peepholes, lengths, forget_bias, cell_clip)
    if not time_major:
        outputs = tf.transpose(outputs, [1, 0, 2])
    return outputs, c, h



@tf.RegisterGradient("TfstateLstmSequence")
def _native_sequence_gradient(op, d_outputs, d_c, d_h):
    """Gradient of the compiled kernel: recompute the chunk on the XLA path (loop path if T is unknown) and differentiate it."""
    inputs, c0, h0, kernel, bias, w_i, w_f, w_o, lengths = op.inputs
    peepholes = (w_i, w_f, w_o) if op.get_attr("use_peephole") else None
    cell_clip = op.get_attr("cell_clip")
    settings = dict(time_major=op.get_attr("time_major"), forget_bias=op.get_attr("forget_bias"),
                    cell_clip=None if cell_clip < 0 else cell_clip)

    def run(inputs, c0, h0, kernel, bias, peepholes, lengths):
        return _sequence(inputs, c0, h0, kernel, bias, peepholes, lengths, **settings)

    steps = inputs.shape[0 if settings["time_major"] else 1]
    if steps is not None and steps <= _MAX_STATIC_STEPS:
        run = tf.function(run, jit_compile=True, autograph=False)
    recomputed = run(inputs, c0, h0, kernel, bias, peepholes, lengths)
    upstream = [tf.zeros_like(y) if d is None else d for y, d in zip(op.outputs, (d_outputs, d_c, d_h))]
    wrt = [inputs, c0, h0, kernel, bias] + list(peepholes or ())
    grads = tf.gradients(list(recomputed), wrt, grad_ys=upstream)
    return grads + [None] * (9 - len(grads))

class _FusedLSTM(RNNCell):
    """Shared body of the fused cells: TF1 contrib's variables, a one-step kernel and `unroll`."""

    def __init__(self, num_units, forget_bias=1.0, cell_clip=None, use_peephole=False, reuse=None,
                 name=None, dtype=None, implementation="auto"):
        super().__init__(reuse=reuse, name=name, dtype=dtype)
        if implementation not in _IMPLEMENTATIONS:
            raise ValueError(
                f"{type(self).__name__}(implementation={implementation!r}) is not one of {_IMPLEMENTATIONS}.")
        self._num_units = num_units
        self._forget_bias = float(forget_bias)
        self._cell_clip = None if cell_clip is None or cell_clip < 0 else float(cell_clip)
        self._use_peephole = use_peephole
        self._implementation = implementation

    @property
    def num_units(self):
        return self._num_units

    @property
    def state_size(self):
        return LSTMStateTuple(self._num_units, self._num_units)

    @property
    def output_size(self):
        return self._num_units

    def _build(self, input_depth, dtype):
        units = self._num_units
        self._kernel = self._add_variable("kernel", [input_depth + units, 4 * units], dtype)
        self._bias = self._add_variable("bias", [4 * units], dtype, tf.compat.v1.zeros_initializer())
        if self._use_peephole:
            self._w_i_diag = self._add_variable("w_i_diag", [units], dtype)
            self._w_f_diag = self._add_variable("w_f_diag", [units], dtype)
            self._w_o_diag = self._add_variable("w_o_diag", [units], dtype)

    def _peepholes(self):
        if not self._use_peephole:
            return None
        return (tf.convert_to_tensor(self._w_i_diag), tf.convert_to_tensor(self._w_f_diag),
                tf.convert_to_tensor(self._w_o_diag))

    def call(self, inputs, state):
        # One step is a oneDNN matmul plus fused-by-Grappler gate ops; measured faster than TF's
        # LSTMBlockCell kernel (Eigen matmul) in tfstate.generate, so that kernel is used only
        # with implementation="block".
        c_prev, h_prev = state
        if self._implementation == "block" and inputs.dtype in (tf.float32, tf.float16):
            zeros = tf.zeros([self._num_units], inputs.dtype)
            peep = self._peepholes() or (zeros, zeros, zeros)
            _, c, _, _, _, _, h = tf.raw_ops.LSTMBlockCell(
                x=inputs, cs_prev=c_prev, h_prev=h_prev, w=self._kernel, wci=peep[0], wcf=peep[1], wco=peep[2],
                b=self._bias, forget_bias=self._forget_bias,
                cell_clip=-1.0 if self._cell_clip is None else self._cell_clip, use_peephole=self._use_peephole)
        else:
            gates = tf.nn.bias_add(tf.matmul(tf.concat([inputs, h_prev], 1), self._kernel), self._bias)
            c, h = _gates(gates, c_prev, None, None, self._peepholes(), self._forget_bias, self._cell_clip)
        return h, LSTMStateTuple(c, h)

    def _ensure_built(self, inputs, scope=None, depth=None):
        """Creates the variables as the first `__call__` would, from `[.., .., depth]` inputs (or `depth`)."""
        if self._scope is not None:
            return
        depth = inputs.shape[-1] if depth is None else depth
        if depth is None:
            raise ValueError(
                f"{type(self).__name__} needs inputs with a known last dimension; got shape {inputs.shape}.")
        with self._first_scope(scope) as captured:
            self._scope = captured
            self._build(depth, self._dtype or inputs.dtype.base_dtype)

    def _sequence_arguments(self):
        """What `_sequence` needs besides inputs and state: `(kernel, bias, peepholes)` and the settings."""
        weights = (tf.convert_to_tensor(self._kernel), tf.convert_to_tensor(self._bias), self._peepholes())
        return weights, dict(forget_bias=self._forget_bias, cell_clip=self._cell_clip)

    def unroll(self, inputs, initial_state, sequence_length=None, time_major=False):
        """Runs the cell over a whole chunk: `(outputs, final_state)`, like `dynamic_rnn`.

        Args:
          inputs: `[batch, time, depth]`, or `[time, batch, depth]` with `time_major=True`.
          initial_state: `LSTMStateTuple(c, h)`, each `[batch, num_units]`.
          sequence_length: optional `[batch]` ints; rows stop at their length: their outputs past it
            are zeros and their final state is the state at their last valid step.
          time_major: layout of `inputs` and of the returned outputs.
        """
        inputs = tf.convert_to_tensor(inputs)
        if inputs.shape.rank != 3:
            raise ValueError(f"{type(self).__name__}.unroll needs 3-D inputs; got shape {inputs.shape}.")
        require_graph_mode(f"{type(self).__name__}.unroll")
        check_state(self.state_size, initial_state, f"The initial state given to {type(self).__name__}.unroll")
        self._ensure_built(inputs)
        c0, h0 = initial_state
        return self._unroll(inputs, c0, h0, sequence_length, time_major)

    def _resolved_implementation(self, inputs, time_major):
        if self._implementation != "auto":
            return self._implementation
        if not tf.config.list_physical_devices("GPU") and native.unsupported_reason(self._num_units, inputs.dtype) is None:
            return "native"
        steps = inputs.shape[0 if time_major else 1]
        if steps is not None and steps <= _MAX_STATIC_STEPS:
            return "xla"
        return "block" if inputs.dtype in (tf.float32, tf.float16) else "loop"

    def _unroll(self, inputs, c0, h0, sequence_length, time_major):
        implementation = self._resolved_implementation(inputs, time_major)
        with tf.name_scope(type(self).__name__ + "Unroll"):
            lengths = None
            if sequence_length is not None:
                lengths = tf.cast(tf.convert_to_tensor(sequence_length), tf.int32)
            kernel = tf.convert_to_tensor(self._kernel)
            bias = tf.convert_to_tensor(self._bias)
            peepholes = self._peepholes()
            if implementation == "block":
                outputs, c, h = self._block(inputs, c0, h0, kernel, bias, peepholes, lengths, time_major)
            elif implementation == "native":
                outputs, c, h = native.lstm_sequence(inputs, c0, h0, kernel, bias, peepholes, lengths, time_major,
                                                     self._forget_bias, self._cell_clip)
            else:
                settings = dict(time_major=time_major, forget_bias=self._forget_bias, cell_clip=self._cell_clip)

                def run(inputs, c0, h0, kernel, bias, peepholes, lengths):
                    return _sequence(inputs, c0, h0, kernel, bias, peepholes, lengths, **settings)

                if implementation == "xla":
                    run = tf.function(run, jit_compile=True, autograph=False)
                outputs, c, h = run(inputs, c0, h0, kernel, bias, peepholes, lengths)
        return outputs, LSTMStateTuple(c, h)

    def _block(self, inputs, c0, h0, kernel, bias, peepholes, lengths, time_major):
        """TensorFlow's BlockLSTM kernel over the chunk (TF1 contrib's LSTMBlockFusedCell)."""
        if not time_major:
            inputs = tf.transpose(inputs, [1, 0, 2])
        steps = tf.shape(inputs)[0]
        zeros = tf.zeros([self._num_units], inputs.dtype)
        peep = peepholes or (zeros, zeros, zeros)
        max_len = tf.cast(steps if lengths is None else tf.reduce_max(lengths), tf.int64)
        _, cs, _, _, _, _, hs = tf.raw_ops.BlockLSTM(
            seq_len_max=max_len, x=inputs, cs_prev=c0, h_prev=h0, w=kernel, wci=peep[0], wcf=peep[1],
            wco=peep[2], b=bias, forget_bias=self._forget_bias,
            cell_clip=-1.0 if self._cell_clip is None else self._cell_clip, use_peephole=self._use_peephole)
        if lengths is None:
            c, h = cs[-1], hs[-1]
        else:
            mask = tf.expand_dims(tf.transpose(tf.sequence_mask(lengths, steps, dtype=inputs.dtype)), -1)
            hs = hs * mask
            # index 0 is the initial state, so a row of length 0 keeps it
            rows = tf.range(tf.shape(lengths)[0])
            indices = tf.stack([lengths, rows], axis=1)
            c = tf.gather_nd(tf.concat([c0[None], cs], 0), indices)
            h = tf.gather_nd(tf.concat([h0[None], hs], 0), indices)
        if not time_major:
            hs = tf.transpose(hs, [1, 0, 2])
        return hs, c, h


class LSTMBlockCell(_FusedLSTM):
    """TF1 contrib's `LSTMBlockCell`: an LSTM step in one kernel, variables under `lstm_cell/`.

    Weights are interchangeable with `tfstate.LSTMCell` (same scope, same names, same layout).
    `cell_clip=None` (or negative) means no clipping. See the module docstring for `unroll`.
    """

    _default_name = "lstm_cell"

    def __init__(self, num_units, forget_bias=1.0, cell_clip=None, use_peephole=False, dtype=None, reuse=None,
                 name="lstm_cell", implementation="auto"):
        super().__init__(num_units, forget_bias=forget_bias, cell_clip=cell_clip, use_peephole=use_peephole,
                         reuse=reuse, name=name, dtype=dtype, implementation=implementation)


class LSTMBlockFusedCell(_FusedLSTM):
    """TF1 contrib's `LSTMBlockFusedCell`: the whole sequence in one fused computation.

    As in TF1, `cell(inputs, initial_state=None, dtype=None, sequence_length=None)` with
    time-major `[time, batch, depth]` inputs returns `(outputs, final_state)`. Called with 2-D
    inputs and a state, it runs one step like any cell (what `tfstate.generate` does).
    Variables live under `lstm_fused_cell/` by default, as in TF1.
    """

    _default_name = "lstm_fused_cell"

    def __init__(self, num_units, forget_bias=1.0, cell_clip=None, use_peephole=False, reuse=None, dtype=None,
                 name="lstm_fused_cell", implementation="auto"):
        super().__init__(num_units, forget_bias=forget_bias, cell_clip=cell_clip, use_peephole=use_peephole,
                         reuse=reuse, name=name, dtype=dtype, implementation=implementation)

    def __call__(self, inputs, initial_state=None, dtype=None, sequence_length=None, scope=None):
        inputs = tf.convert_to_tensor(inputs)
        if inputs.shape.rank != 3:
            if initial_state is None:
                raise ValueError("LSTMBlockFusedCell called on one step (2-D inputs) needs a state.")
            return super().__call__(inputs, initial_state, scope=scope)
        self._ensure_built(inputs, scope)
        if initial_state is None:
            if dtype is None:
                raise ValueError("LSTMBlockFusedCell needs initial_state or dtype (as in TF1).")
            zeros = tf.zeros(tf.stack([tf.shape(inputs)[1], self._num_units]), dtype=dtype)
            initial_state = LSTMStateTuple(zeros, zeros)
        return self.unroll(inputs, initial_state, sequence_length=sequence_length, time_major=True)


class FusedMultiRNNCell(MultiRNNCell):
    """`MultiRNNCell` of fused cells whose `unroll` unrolls each layer with its fused path.

    Variables are those of `MultiRNNCell` (`multi_rnn_cell/cell_0/lstm_cell/kernel`, ...). When
    every layer is a fused LSTM on the XLA path, the whole stack is one XLA cluster:

        xs = inputs
        for layer in layers:                                # inside one tf.function(jit_compile=True)
            xs, final[layer] = layer's hoisted projection + static unroll over xs

    Otherwise each layer is unrolled on its own: fused layers with their `unroll`, others with
    `tf.compat.v1.nn.dynamic_rnn`.
    """

    def unroll(self, inputs, initial_state, sequence_length=None, time_major=False):
        if not self._state_is_tuple:
            raise ValueError("FusedMultiRNNCell.unroll needs state_is_tuple=True.")
        require_graph_mode("FusedMultiRNNCell.unroll")
        inputs = tf.convert_to_tensor(inputs)
        check_state(self.state_size, initial_state, "The initial state given to FusedMultiRNNCell.unroll")
        if self._scope is None:
            with self._first_scope(None) as captured:
                self._scope = captured
        one_cluster = inputs.shape.rank == 3 and all(
            isinstance(cell, _FusedLSTM) and cell._resolved_implementation(inputs, time_major) == "xla"
            for cell in self._cells)
        with tf.compat.v1.variable_scope(self._scope):
            if one_cluster:
                return self._unroll_one_cluster(inputs, initial_state, sequence_length, time_major)
            layer_input, final_states = inputs, []
            for index, (cell, state) in enumerate(zip(self._cells, initial_state)):
                with tf.compat.v1.variable_scope(f"cell_{index}"):
                    if hasattr(cell, "unroll"):
                        layer_input, final = cell.unroll(layer_input, state, sequence_length=sequence_length,
                                                         time_major=time_major)
                    else:
                        layer_input, final = tf.compat.v1.nn.dynamic_rnn(
                            cell, layer_input, sequence_length=sequence_length, initial_state=state,
                            time_major=time_major)
                final_states.append(final)
        return layer_input, tuple(final_states)

    def _unroll_one_cluster(self, inputs, initial_state, sequence_length, time_major):
        """All layers' hoisted projections and static unrolls in one `tf.function(jit_compile=True)`."""
        depth, arguments = inputs.shape[-1], []
        for index, cell in enumerate(self._cells):
            with tf.compat.v1.variable_scope(f"cell_{index}"):
                cell._ensure_built(inputs, depth=depth)
            arguments.append(cell._sequence_arguments())
            depth = cell.output_size
        with tf.name_scope("FusedMultiRNNCellUnroll"):
            lengths = None
            if sequence_length is not None:
                lengths = tf.cast(tf.convert_to_tensor(sequence_length), tf.int32)

            def run(inputs, states, weights, lengths):
                layer_input = inputs if time_major else tf.transpose(inputs, [1, 0, 2])
                finals = []
                for (c0, h0), (kernel, bias, peepholes), (_, settings) in zip(states, weights, arguments):
                    layer_input, c, h = _sequence(layer_input, c0, h0, kernel, bias, peepholes, lengths,
                                                  time_major=True, **settings)
                    finals.append((c, h))
                return (layer_input if time_major else tf.transpose(layer_input, [1, 0, 2])), finals

            states = [tuple(state) for state in initial_state]
            weights = [weights for weights, _ in arguments]
            outputs, finals = tf.function(run, jit_compile=True, autograph=False)(inputs, states, weights, lengths)
        return outputs, tuple(LSTMStateTuple(c, h) for c, h in finals)
