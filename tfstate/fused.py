"""Fused cells: TF1 contrib's `LSTMBlockCell` / `LSTMBlockFusedCell` with a fast sequence path, and `GRUBlockCell(V2)`.

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

`unroll` is what `tfstate.stateful_dynamic_rnn` calls (`dynamic_rnn_with_states` steps the cell one
step at a time, to trace every state). It runs

    xw = inputs @ kernel[:depth] + bias                     # one large matmul for all steps
    for t in range(T):                                      # static when T is known
        c, h = gates(xw[t] + h @ kernel[depth:], c)         # one small matmul + fused gates
    (rows past sequence_length keep their state and output zeros, like dynamic_rnn)

Implementations (the `implementation` argument; "auto" picks the first that applies):

    "native"  tfstate's compiled kernel (`tfstate.native`): float32, Linux with a C++ compiler, no GPU
              visible (variants for AVX-512, AVX2 + FMA and any other CPU). The fastest forward on CPU
              (in training, "xla" is as fast).
    "xla"     the loop above as one XLA cluster, statically unrolled; needs the chunk length at
              graph-build time.
    "block"   TensorFlow's `BlockLSTM` kernel over the whole chunk (float32 / float16).
    "loop"    the loop above as a `tf.while_loop` of TF ops (any dtype).

All four compute the same values (to float rounding) and the same gradients. "native", "xla" and
"block" share one explicit gradient (`_sequence_gradient`, from the outputs and cell states the
forward returns); "loop" uses TensorFlow's autodiff. docs/benchmarks.md has the measurements.
"""

import functools

import tensorflow as tf

from tfstate import native
from tfstate._checks import check_state, require_graph_mode
from tfstate.cells import GRUCell, LSTMStateTuple, MultiRNNCell, RNNCell

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


def _scan(step, count, carry, emitted_like, reverse=False):
    """`carry, emitted = step(t, carry)` for t in range(count) (or reversed); returns (emitted stacked in time order, carry).

    A Python loop, so XLA sees one straight-line program, when `count` is a known int up to
    _MAX_STATIC_STEPS; otherwise a `tf.while_loop` writing `emitted` (tensors shaped like the
    `emitted_like` tensors) to TensorArrays.
    """
    if count == 0:  # XLA cannot compile a while_loop over zero-length arrays
        return tuple(tf.zeros_like(like)[tf.newaxis][:0] for like in emitted_like), carry
    if isinstance(count, int) and count <= _MAX_STATIC_STEPS:
        emitted = [None] * count
        for t in (reversed(range(count)) if reverse else range(count)):
            carry, emitted[t] = step(t, carry)
        return tuple(tf.stack(column) for column in zip(*emitted)), carry
    total = tf.convert_to_tensor(count)
    arrays = tuple(tf.TensorArray(like.dtype, size=total, element_shape=like.shape) for like in emitted_like)

    def body(k, carry, arrays):
        t = total - 1 - k if reverse else k
        carry, emitted = step(t, carry)
        return k + 1, carry, tuple(array.write(t, value) for array, value in zip(arrays, emitted))

    _, carry, arrays = tf.while_loop(lambda k, *_: k < total, body, (tf.constant(0), carry, arrays))
    return tuple(array.stack() for array in arrays), carry


def _valid_steps(lengths, steps, dtype):
    """`[T, B, 1]` mask of the steps each row runs (None without lengths: every step runs)."""
    if lengths is None:
        return None
    return tf.expand_dims(tf.transpose(tf.sequence_mask(lengths, steps, dtype=dtype)), -1)


def _recurrence(xw, c, h, recurrent_kernel, peepholes, lengths, forget_bias, cell_clip):
    """Runs the recurrence over time-major `xw` [T, B, 4H]; returns (outputs [T, B, H], cell states [T, B, H], c, h).

    Rows past their length output zeros and carry their state (also into the cell states).
    """
    def step(t, state):
        c, h = state
        new_c, new_h = _gates(xw[t], c, h, recurrent_kernel, peepholes, forget_bias, cell_clip)
        if lengths is None:
            return (new_c, new_h), (new_h, new_c)
        valid = tf.expand_dims(t < lengths, 1)
        new_c, new_h, output = tf.where(valid, new_c, c), tf.where(valid, new_h, h), tf.where(valid, new_h, 0.0)
        return (new_c, new_h), (output, new_c)

    count = xw.shape[0] if xw.shape[0] is not None else tf.shape(xw)[0]
    (outputs, cell_states), (c, h) = _scan(step, count, (c, h), [h, h])
    return outputs, cell_states, c, h


def _sequence(inputs, c0, h0, kernel, bias, peepholes, lengths, time_major, forget_bias, cell_clip):
    """The hoisted-projection LSTM over a chunk: returns (outputs, cell states, both like the inputs, c, h)."""
    depth = inputs.shape[-1]
    units = h0.shape[-1]
    if not time_major:
        inputs = tf.transpose(inputs, [1, 0, 2])
    shape = tf.shape(inputs)
    xw = tf.matmul(tf.reshape(inputs, [-1, depth]), kernel[:depth]) + bias
    xw = tf.reshape(xw, tf.stack([shape[0], shape[1], 4 * units]))
    xw.set_shape([inputs.shape[0], inputs.shape[1], 4 * units])
    outputs, cell_states, c, h = _recurrence(xw, c0, h0, kernel[depth:], peepholes, lengths, forget_bias, cell_clip)
    if not time_major:
        outputs, cell_states = tf.transpose(outputs, [1, 0, 2]), tf.transpose(cell_states, [1, 0, 2])
    return outputs, cell_states, c, h


def _sequence_gradient(inputs, c0, h0, kernel, bias, peepholes, lengths, outputs, cell_states, upstream,
                       time_major, forget_bias, cell_clip):
    """Backprop through a chunk from its outputs and cell states (what both fast paths return).

    One large matmul recomputes every step's gate pre-activations from `[x_t, h_{t-1}]`; a reverse
    loop carries (dh, dc) with the gate maths and one `[B, 4H] @ [4H, H]` matmul per step; two
    more large matmuls give the kernel's and the inputs' gradients. Plain TF ops (oneDNN matmuls):
    compiling the loop with XLA measured 1.5x slower. Returns gradients for (inputs, c0, h0,
    kernel, bias, *peepholes).
    """
    d_outputs, d_c, d_h = upstream
    if not time_major:
        inputs, outputs, cell_states, d_outputs = (tf.transpose(t, [1, 0, 2])
                                                   for t in (inputs, outputs, cell_states, d_outputs))
    depth, units = inputs.shape[-1], h0.shape[-1]
    shape = tf.shape(inputs)
    h_prev = tf.concat([h0[None], outputs], 0)[:-1]  # what step t read, for every step a row runs
    c_prev = tf.concat([c0[None], cell_states], 0)[:-1]
    xh = tf.reshape(tf.concat([inputs, h_prev], 2), [-1, depth + units])
    gates = tf.reshape(tf.nn.bias_add(tf.matmul(xh, kernel), bias), tf.stack([shape[0], shape[1], 4 * units]))
    valid = _valid_steps(lengths, shape[0], inputs.dtype)
    # every step's activations at once (large elementwise ops), so the loop below only chains them
    i, j, f, o = tf.split(gates, 4, axis=2)
    w_i, w_f, w_o = peepholes if peepholes is not None else (None, None, None)
    if peepholes is not None:
        i, f = i + w_i * c_prev, f + w_f * c_prev
    s_i, t_j, s_f = tf.sigmoid(i), tf.tanh(j), tf.sigmoid(f + forget_bias)
    c_raw = s_f * c_prev + s_i * t_j
    c = c_raw if cell_clip is None else tf.clip_by_value(c_raw, -cell_clip, cell_clip)
    if peepholes is not None:
        o = o + w_o * c
    s_o, t_c = tf.sigmoid(o), tf.tanh(c)
    factors = {"o": t_c * s_o * (1 - s_o), "c": s_o * (1 - t_c * t_c), "i": t_j * s_i * (1 - s_i),
               "j": s_i * (1 - t_j * t_j), "f": c_prev * s_f * (1 - s_f), "forget": s_f}
    if cell_clip is not None:
        factors["clip"] = tf.cast(tf.abs(c_raw) <= cell_clip, c_raw.dtype)
    if valid is not None:
        factors["valid"] = valid
    d_outputs = d_outputs if valid is None else d_outputs * valid  # padded outputs are constants
    # a materialized copy: Grappler would fold a plain transpose into each step's MatMul as
    # transpose_b, which oneDNN runs ~3x slower at this shape (measured)
    recurrent_kernel_t = tf.raw_ops.Snapshot(input=tf.transpose(kernel[depth:]))

    def step(t, carry):
        dh, dc = carry
        a = {name: factor[t] for name, factor in factors.items()}
        dh = dh + d_outputs[t]
        d_o = dh * a["o"]
        dc_total = dc + dh * a["c"] + (d_o * w_o if peepholes is not None else 0.0)
        if cell_clip is not None:
            dc_total = dc_total * a["clip"]
        d_i, d_j, d_f = dc_total * a["i"], dc_total * a["j"], dc_total * a["f"]
        dc_prev = dc_total * a["forget"] + ((d_i * w_i + d_f * w_f) if peepholes is not None else 0.0)
        d_gates = tf.concat([d_i, d_j, d_f, d_o], 1)
        if valid is not None:  # rows past their length pass (dh, dc) through untouched
            d_gates = d_gates * a["valid"]
            dc_prev = tf.where(a["valid"] > 0, dc_prev, dc)
        dh_prev = tf.matmul(d_gates, recurrent_kernel_t)
        if valid is not None:
            dh_prev = tf.where(a["valid"] > 0, dh_prev, dh)
        return (dh_prev, dc_prev), (d_gates,)

    count = inputs.shape[0] if inputs.shape[0] is not None else shape[0]
    (d_gates,), (d_h0, d_c0) = _scan(step, count, (d_h, d_c), [tf.tile(d_h, [1, 4])], reverse=True)
    flat = tf.reshape(d_gates, [-1, 4 * units])
    d_inputs = tf.reshape(tf.matmul(flat, kernel[:depth], transpose_b=True), tf.stack([shape[0], shape[1], depth]))
    if not time_major:
        d_inputs = tf.transpose(d_inputs, [1, 0, 2])
    grads = [d_inputs, d_c0, d_h0, tf.matmul(xh, flat, transpose_a=True), tf.reduce_sum(flat, 0)]
    if peepholes is not None:
        d_i, _, d_f, d_o = tf.split(d_gates, 4, axis=2)
        grads += [tf.reduce_sum(d_i * c_prev, [0, 1]), tf.reduce_sum(d_f * c_prev, [0, 1]),
                  tf.reduce_sum(d_o * c, [0, 1])]
    return grads


def _zeros_where_none(grads, like):
    """Upstream gradients with None (an output nothing depends on) replaced by zeros shaped like it."""
    return [tf.zeros_like(y) if d is None else d for y, d in zip(like, grads)]


def _lstm_with_gradient(forward, inputs, c0, h0, kernel, bias, peepholes, lengths, time_major, forget_bias,
                        cell_clip):
    """`forward` (returning outputs, cell states, c, h) as a differentiable `(outputs, c, h)` with `_sequence_gradient`.

    An explicit gradient, not autodiff: autodiff of the static unroll sums the recurrent kernel's
    T gradients with one AddN, which Grappler rewrites into TemporaryVariable ops XLA cannot
    compile, and the compiled kernel has no autodiff at all.
    """
    settings = dict(time_major=time_major, forget_bias=forget_bias, cell_clip=cell_clip)

    @tf.custom_gradient
    def sequence(inputs, c0, h0, kernel, bias, *peephole_list):
        peepholes = tuple(peephole_list) or None
        outputs, cell_states, c, h = forward(inputs, c0, h0, kernel, bias, peepholes, lengths)

        def gradient(d_outputs, d_c, d_h):
            upstream = _zeros_where_none((d_outputs, d_c, d_h), (outputs, c, h))
            return _sequence_gradient(inputs, c0, h0, kernel, bias, peepholes, lengths, outputs, cell_states, upstream,
                                      **settings)

        return (outputs, c, h), gradient

    return sequence(inputs, c0, h0, kernel, bias, *(peepholes or ()))


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
        # as in TF1 contrib's kernels, only a positive cell_clip clips
        self._cell_clip = None if cell_clip is None or cell_clip <= 0 else float(cell_clip)
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
        if not tf.config.list_physical_devices("GPU") and native.unsupported_reason(inputs.dtype) is None:
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
            settings = dict(time_major=time_major, forget_bias=self._forget_bias, cell_clip=self._cell_clip)
            if implementation == "native":
                forward = functools.partial(native.lstm_sequence, **settings)
            elif implementation == "block":
                forward = functools.partial(self._block, time_major=time_major)
            else:
                def forward(inputs, c0, h0, kernel, bias, peepholes, lengths):
                    return _sequence(inputs, c0, h0, kernel, bias, peepholes, lengths, **settings)

            if implementation == "loop":  # plain TF ops: TensorFlow's own autodiff
                outputs, _, c, h = forward(inputs, c0, h0, kernel, bias, peepholes, lengths)
            else:
                if implementation == "xla":
                    forward = tf.function(forward, jit_compile=True, autograph=False)
                # explicit gradient; for "block" also because TF's BlockLSTMGrad ignores cell_clip
                outputs, c, h = _lstm_with_gradient(forward, inputs, c0, h0, kernel, bias, peepholes, lengths,
                                                    **settings)
        return outputs, LSTMStateTuple(c, h)

    def _block(self, inputs, c0, h0, kernel, bias, peepholes, lengths, time_major):
        """TensorFlow's BlockLSTM kernel over the chunk: (outputs, cell states, c, h) like `_sequence`.

        Past a row's length its outputs are zeros; its cell states there are not meaningful.
        """
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
        if lengths is None:  # the last step's state; the initial one for a chunk of no steps
            c, h = tf.concat([c0[None], cs], 0)[-1], tf.concat([h0[None], hs], 0)[-1]
        else:
            hs = hs * _valid_steps(lengths, steps, inputs.dtype)
            # index 0 is the initial state, so a row of length 0 keeps it
            rows = tf.range(tf.shape(lengths)[0])
            indices = tf.stack([lengths, rows], axis=1)
            c = tf.gather_nd(tf.concat([c0[None], cs], 0), indices)
            h = tf.gather_nd(tf.concat([h0[None], hs], 0), indices)
        if not time_major:
            hs, cs = tf.transpose(hs, [1, 0, 2]), tf.transpose(cs, [1, 0, 2])
        return hs, cs, c, h


class LSTMBlockCell(_FusedLSTM):
    """TF1 contrib's `LSTMBlockCell`: an LSTM step in one kernel, variables under `lstm_cell/`.

    Weights are interchangeable with `tfstate.LSTMCell` (same scope, same names, same layout).
    `cell_clip=None`, zero or negative means no clipping (as in TF1 contrib). See the module docstring for `unroll`.
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

            layer_args = [(c0, h0, kernel, bias, peepholes or ())
                          for (c0, h0), ((kernel, bias, peepholes), _) in zip(initial_state, arguments)]
            settings = [settings for _, settings in arguments]

            def forward(inputs, layer_args, lengths):
                """Every layer's (outputs, cell states, c, h), time-major."""
                results, layer_input = [], inputs
                for (c0, h0, kernel, bias, peepholes), layer_settings in zip(layer_args, settings):
                    results.append(_sequence(layer_input, c0, h0, kernel, bias, peepholes or None, lengths,
                                             time_major=True, **layer_settings))
                    layer_input = results[-1][0]
                return results

            def backward(inputs, layer_args, lengths, results, d_outputs, d_finals):
                """`_sequence_gradient` layer by layer from the top; gradients in `layer_args`' flat order."""
                layer_inputs = [inputs] + [outputs for outputs, _, _, _ in results[:-1]]
                grads = [None] * len(results)
                for k in reversed(range(len(results))):
                    c0, h0, kernel, bias, peepholes = layer_args[k]
                    d_c, d_h = d_finals[k]
                    layer_grads = _sequence_gradient(
                        layer_inputs[k], c0, h0, kernel, bias, peepholes or None, lengths, results[k][0],
                        results[k][1], (d_outputs, d_c, d_h), time_major=True, **settings[k])
                    d_outputs, grads[k] = layer_grads[0], layer_grads[1:]
                return d_outputs, [g for layer_grads in grads for g in layer_grads]

            forward = tf.function(forward, jit_compile=True, autograph=False)

            @tf.custom_gradient
            def stack(inputs, *flat_args):  # explicit gradient: see _lstm_with_gradient
                inputs = inputs if time_major else tf.transpose(inputs, [1, 0, 2])
                args = tf.nest.pack_sequence_as(layer_args, flat_args)
                results = forward(inputs, args, lengths)
                outputs = results[-1][0] if time_major else tf.transpose(results[-1][0], [1, 0, 2])
                finals = [(c, h) for _, _, c, h in results]

                def gradient(*upstream):
                    d_outputs, *d_finals = _zeros_where_none(upstream, [outputs] + tf.nest.flatten(finals))
                    if not time_major:
                        d_outputs = tf.transpose(d_outputs, [1, 0, 2])
                    d_inputs, d_args = backward(inputs, args, lengths, results, d_outputs,
                                                tf.nest.pack_sequence_as(finals, d_finals))
                    return [d_inputs if time_major else tf.transpose(d_inputs, [1, 0, 2])] + d_args

                return (outputs, finals), gradient

            outputs, finals = stack(inputs, *tf.nest.flatten(layer_args))
        return outputs, tuple(LSTMStateTuple(c, h) for c, h in finals)
