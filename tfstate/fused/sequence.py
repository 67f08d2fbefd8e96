"""The LSTM over a chunk as plain TF ops (the "xla" and "loop" paths) and the explicit gradient all fast paths share.

    xw = inputs @ kernel[:depth] + bias                     # one large matmul for all steps
    for t in range(T):                                      # static when T is known
        c, h = gates(xw[t] + h @ kernel[depth:], c)         # one small matmul + fused gates
    (rows past their length keep their state and output zeros, like dynamic_rnn)

A forward path returns `(outputs, cell states, c, h)`: the cell state of every step is what the
gradient needs besides the outputs (`sequence_gradient`). With `resets` (a time-major bool
`[T, B]` mask, see `tfstate.resets`) a marked row starts step t from `reset_state` `(c, h)`.
"""

import typing

import tensorflow as tf

from tfstate import native

MAX_STATIC_STEPS = 512  # longer chunks (or unknown lengths) use a loop, not a static unroll


def gates(xw, c_prev, h_prev, recurrent_kernel, peepholes, forget_bias, cell_clip):
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


def scan(step, count, carry, emitted_like, reverse=False):
    """`carry, emitted = step(t, carry)` for t in range(count) (or reversed); returns (emitted in time order, carry).

    A Python loop, so XLA sees one straight-line program, when `count` is a known int up to
    MAX_STATIC_STEPS; otherwise a `tf.while_loop` writing `emitted` (tensors shaped like the
    `emitted_like` tensors) to TensorArrays.
    """
    if count == 0:  # XLA cannot compile a while_loop over zero-length arrays
        return tuple(tf.zeros_like(like)[tf.newaxis][:0] for like in emitted_like), carry
    if isinstance(count, int) and count <= MAX_STATIC_STEPS:
        emitted = [None] * count
        for t in reversed(range(count)) if reverse else range(count):
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


def sequence_lengths(sequence_length, inputs, time_major, who):
    """`sequence_length` as int32 `[batch]` clipped to `[0, steps]`, or None; checked to be one int per row.

    Clipping is `tf.compat.v1.nn.dynamic_rnn`'s rule on every path: a length past the chunk runs
    the whole chunk, a negative one runs no step. A length vector of the wrong size is an error
    naming it (at build time when both sizes are known, else in-graph), as in TF1.
    """
    if sequence_length is None:
        return None
    lengths = tf.convert_to_tensor(sequence_length)
    if not lengths.dtype.is_integer or lengths.shape.rank not in (None, 1):
        raise ValueError(
            f"{who}: sequence_length must be a vector of ints, one per batch row; "
            f"got {lengths.dtype.name} of shape {lengths.shape}."
        )
    batch_axis, time_axis = (1, 0) if time_major else (0, 1)
    rows = inputs.shape[batch_axis]
    if rows is not None and lengths.shape.rank == 1 and lengths.shape[0] not in (None, rows):
        raise ValueError(
            f"{who}: sequence_length must have one entry per batch row ({rows}); got {lengths.shape[0]} entries."
        )
    shape = tf.shape(inputs)
    check = tf.debugging.Assert(
        tf.equal(tf.size(lengths), shape[batch_axis]),
        [
            tf.strings.format(
                f"{who}: sequence_length must have one entry per batch row ({{}}); got {{}} entries.",
                (shape[batch_axis], tf.size(lengths)),
            )
        ],
    )
    with tf.control_dependencies([check]):
        return tf.clip_by_value(tf.cast(lengths, tf.int32), 0, shape[time_axis])


def valid_steps(lengths, steps, dtype):
    """`[T, B, 1]` mask of the steps each row runs (None without lengths: every step runs)."""
    if lengths is None:
        return None
    return tf.expand_dims(tf.transpose(tf.sequence_mask(lengths, steps, dtype=dtype)), -1)


def _recurrence(xw, c, h, recurrent_kernel, peepholes, lengths, forget_bias, cell_clip, resets, reset_state):
    """Runs the recurrence over time-major `xw` [T, B, 4H]; returns (outputs [T, B, H], cell states [T, B, H], c, h).

    Rows past their length output zeros and carry their state (also into the cell states); a
    reset there does nothing.
    """

    def step(t, state):
        c, h = state
        c_read, h_read = c, h
        if resets is not None:
            marked = tf.expand_dims(resets[t], 1)
            c_read, h_read = tf.where(marked, reset_state[0], c), tf.where(marked, reset_state[1], h)
        new_c, new_h = gates(xw[t], c_read, h_read, recurrent_kernel, peepholes, forget_bias, cell_clip)
        if lengths is None:
            return (new_c, new_h), (new_h, new_c)
        valid = tf.expand_dims(t < lengths, 1)
        new_c, new_h, output = tf.where(valid, new_c, c), tf.where(valid, new_h, h), tf.where(valid, new_h, 0.0)
        return (new_c, new_h), (output, new_c)

    count = xw.shape[0] if xw.shape[0] is not None else tf.shape(xw)[0]
    (outputs, cell_states), (c, h) = scan(step, count, (c, h), [h, h])
    return outputs, cell_states, c, h


def sequence(
    inputs, c0, h0, kernel, bias, peepholes, lengths, time_major, forget_bias, cell_clip, resets=None, reset_state=None
):
    """The hoisted-projection LSTM over a chunk: returns (outputs, cell states, both like the inputs, c, h)."""
    depth = inputs.shape[-1]
    units = h0.shape[-1]
    if not time_major:
        inputs = tf.transpose(inputs, [1, 0, 2])
    shape = tf.shape(inputs)
    xw = tf.matmul(tf.reshape(inputs, [-1, depth]), kernel[:depth]) + bias
    xw = tf.reshape(xw, tf.stack([shape[0], shape[1], 4 * units]))
    xw.set_shape([inputs.shape[0], inputs.shape[1], 4 * units])
    outputs, cell_states, c, h = _recurrence(
        xw, c0, h0, kernel[depth:], peepholes, lengths, forget_bias, cell_clip, resets, reset_state
    )
    if not time_major:
        outputs, cell_states = tf.transpose(outputs, [1, 0, 2]), tf.transpose(cell_states, [1, 0, 2])
    return outputs, cell_states, c, h


class _StepFactors(typing.NamedTuple):
    """The derivatives the reverse loop chains, for every step at once (`[T, B, H]`, or None where unused).

    With s = sigmoid of a gate's pre-activation, t_j = tanh(j), t_c = tanh(c):
    """

    output_gate: tf.Tensor  # d h / d o        = t_c * s_o * (1 - s_o)
    cell: tf.Tensor  # d h / d c        = s_o * (1 - t_c^2)
    input_gate: tf.Tensor  # d c / d i        = t_j * s_i * (1 - s_i)
    candidate: tf.Tensor  # d c / d j        = s_i * (1 - t_j^2)
    forget_gate: tf.Tensor  # d c / d f        = c_prev * s_f * (1 - s_f)
    carry: tf.Tensor  # d c / d c_prev   = s_f (peepholes add theirs in the loop)
    unclipped: tf.Tensor  # 1 where |c| <= cell_clip (the clip passes the gradient), or None
    valid: tf.Tensor  # [T, B, 1], 1 where the row runs the step, or None without lengths

    def at(self, t):
        return _StepFactors(*(None if factor is None else factor[t] for factor in self))


def _step_factors(gate_inputs, c_prev, peepholes, forget_bias, cell_clip, valid):
    """`(_StepFactors, cell states c)` from every step's gate pre-activations `[T, B, 4H]` and previous cell states."""
    i, j, f, o = tf.split(gate_inputs, 4, axis=2)
    if peepholes is not None:
        w_i, w_f, w_o = peepholes
        i, f = i + w_i * c_prev, f + w_f * c_prev
    s_i, t_j, s_f = tf.sigmoid(i), tf.tanh(j), tf.sigmoid(f + forget_bias)
    c_raw = s_f * c_prev + s_i * t_j
    c = c_raw if cell_clip is None else tf.clip_by_value(c_raw, -cell_clip, cell_clip)
    if peepholes is not None:
        o = o + w_o * c
    s_o, t_c = tf.sigmoid(o), tf.tanh(c)
    unclipped = None if cell_clip is None else tf.cast(tf.abs(c_raw) <= cell_clip, c_raw.dtype)
    return _StepFactors(
        output_gate=t_c * s_o * (1 - s_o),
        cell=s_o * (1 - t_c * t_c),
        input_gate=t_j * s_i * (1 - s_i),
        candidate=s_i * (1 - t_j * t_j),
        forget_gate=c_prev * s_f * (1 - s_f),
        carry=s_f,
        unclipped=unclipped,
        valid=valid,
    ), c


def _reverse_step(factors, d_output, carry, peepholes, recurrent_kernel_t):
    """One step of the reverse loop: `(dh, dc)` after step t -> `(dh, dc)` before it, and the step's gate gradients."""
    dh, dc = carry
    dh = dh + d_output
    d_o = dh * factors.output_gate
    dc_total = dc + dh * factors.cell
    if peepholes is not None:
        w_i, w_f, w_o = peepholes
        dc_total = dc_total + d_o * w_o
    if factors.unclipped is not None:
        dc_total = dc_total * factors.unclipped
    d_i, d_j, d_f = dc_total * factors.input_gate, dc_total * factors.candidate, dc_total * factors.forget_gate
    dc_prev = dc_total * factors.carry
    if peepholes is not None:
        dc_prev = dc_prev + d_i * w_i + d_f * w_f
    d_gates = tf.concat([d_i, d_j, d_f, d_o], 1)
    if factors.valid is not None:  # rows past their length pass (dh, dc) through untouched
        d_gates = d_gates * factors.valid
        dc_prev = tf.where(factors.valid > 0, dc_prev, dc)
    dh_prev = tf.matmul(d_gates, recurrent_kernel_t)
    if factors.valid is not None:
        dh_prev = tf.where(factors.valid > 0, dh_prev, dh)
    return (dh_prev, dc_prev), d_gates


def _read_by_each_step(first, sequence, time_axis):
    """`first`, then `sequence` but its last step, along `time_axis`: the state each step read."""
    whole = tf.concat([tf.expand_dims(first, time_axis), sequence], time_axis)
    return whole[:-1] if time_axis == 0 else whole[:, :-1]


def _reverse_loop(
    gate_inputs, c_prev, d_outputs, d_c, d_h, recurrent_kernel, peepholes, valid, marked, forget_bias, cell_clip
):
    """The reverse loop as TF ops: `(d_gates [T, B, 4H], d_c0, d_h0, d_reset_c, d_reset_h, cell states c)`.

    The gate maths' derivatives are computed for all steps at once (`_StepFactors`); the loop
    chains them, carrying (dh, dc) with one `[B, 4H] @ [4H, H]` matmul per step.
    """
    factors, c = _step_factors(gate_inputs, c_prev, peepholes, forget_bias, cell_clip, valid)
    d_outputs = d_outputs if valid is None else d_outputs * valid  # padded outputs are constants
    # a materialized copy: Grappler would fold a plain transpose into each step's MatMul as
    # transpose_b, which oneDNN runs ~3x slower at this shape (measured)
    recurrent_kernel_t = tf.raw_ops.Snapshot(input=tf.transpose(recurrent_kernel))

    def step(t, carry):
        (dh, dc), (d_reset_h, d_reset_c) = carry
        (dh, dc), d_gates = _reverse_step(factors.at(t), d_outputs[t], (dh, dc), peepholes, recurrent_kernel_t)
        if marked is not None:  # a reset row read reset_state at this step: its gradient stops there
            d_reset_h, d_reset_c = d_reset_h + tf.where(marked[t], dh, 0.0), d_reset_c + tf.where(marked[t], dc, 0.0)
            dh, dc = tf.where(marked[t], 0.0, dh), tf.where(marked[t], 0.0, dc)
        return ((dh, dc), (d_reset_h, d_reset_c)), (d_gates,)

    count = gate_inputs.shape[0] if gate_inputs.shape[0] is not None else tf.shape(gate_inputs)[0]
    zeros = tf.zeros_like(d_h)
    (d_gates,), ((d_h0, d_c0), (d_reset_h, d_reset_c)) = scan(
        step, count, ((d_h, d_c), (zeros, zeros)), [tf.tile(d_h, [1, 4])], reverse=True
    )
    return d_gates, d_c0, d_h0, d_reset_c, d_reset_h, c


def sequence_gradient(
    inputs,
    c0,
    h0,
    kernel,
    bias,
    peepholes,
    lengths,
    outputs,
    cell_states,
    upstream,
    time_major,
    forget_bias,
    cell_clip,
    resets=None,
    reset_state=None,
    native_loop=False,
    saved_gates=None,
):
    """Backprop through a chunk from its outputs and cell states (what every fast forward returns).

    One large matmul recomputes every step's gate pre-activations from `[x_t, h_{t-1}]` (unless the
    forward saved them: `saved_gates`, laid out like the inputs, used where it is not empty); a
    reverse loop chains the steps' derivatives, carrying (dh, dc) with one `[B, 4H] @ [4H, H]` matmul per
    step, as TF ops (oneDNN matmuls; compiling them with XLA measured 1.5x slower) or, with
    `native_loop`, in the compiled kernel (`native.lstm_reverse_loop`); two more large matmuls give
    the kernel's and the inputs' gradients. At a reset the gradient of the state the step read goes
    to `reset_state`, not to the step before. Returns gradients for (inputs, c0, h0, kernel, bias,
    [reset c, reset h,] *peepholes).
    """
    d_outputs, d_c, d_h = upstream
    if not (time_major or native_loop):  # the kernel reads either layout; the TF loop works time-major
        inputs, outputs, cell_states, d_outputs = (
            tf.transpose(t, [1, 0, 2]) for t in (inputs, outputs, cell_states, d_outputs)
        )
    layout_time_major = time_major or not native_loop
    depth, units = inputs.shape[-1], h0.shape[-1]
    shape = tf.shape(inputs)
    time_axis = 0 if layout_time_major else 1
    h_prev = _read_by_each_step(h0, outputs, time_axis)  # for every step a row runs
    c_prev = _read_by_each_step(c0, cell_states, time_axis)
    valid = valid_steps(lengths, shape[time_axis], inputs.dtype)  # [T, B, 1]
    marked = None  # [T, B, 1]: the steps that start from reset_state (and run)
    if resets is not None:
        marked = resets[:, :, None] if valid is None else tf.logical_and(resets[:, :, None], valid > 0)
        in_layout = marked if layout_time_major else tf.transpose(marked, [1, 0, 2])
        h_prev = tf.where(in_layout, tf.expand_dims(reset_state[1], time_axis), h_prev)
        c_prev = tf.where(in_layout, tf.expand_dims(reset_state[0], time_axis), c_prev)
    # [x, h, 1] @ [kernel; bias]: the bias's gradient then comes out of the kernel's matmul (a separate
    # column sum of the gate gradients measured 1-3 ms)
    ones = tf.ones(tf.stack([shape[0], shape[1], 1]), inputs.dtype)
    xh = tf.reshape(tf.concat([inputs, h_prev, ones], 2), [-1, depth + units + 1])

    def recomputed():
        return tf.reshape(tf.matmul(xh, tf.concat([kernel, bias[None]], 0)), tf.stack([shape[0], shape[1], 4 * units]))

    if saved_gates is None:
        gate_inputs = recomputed()
    else:
        gate_inputs = tf.cond(tf.size(saved_gates) > 0, lambda: saved_gates, recomputed)
        gate_inputs.set_shape(inputs.shape[:2].concatenate([4 * units]))
    if native_loop:
        d_gates, d_c0, d_h0, d_reset_c, d_reset_h = native.lstm_reverse_loop(
            gate_inputs,
            c_prev,
            d_outputs,
            d_c,
            d_h,
            kernel[depth:],
            peepholes,
            lengths,
            layout_time_major,
            forget_bias,
            cell_clip,
            resets,
        )
        c = cell_states  # the cell state after each step, where a step runs
    else:
        d_gates, d_c0, d_h0, d_reset_c, d_reset_h, c = _reverse_loop(
            gate_inputs, c_prev, d_outputs, d_c, d_h, kernel[depth:], peepholes, valid, marked, forget_bias, cell_clip
        )
    flat = tf.reshape(d_gates, [-1, 4 * units])
    d_inputs = tf.reshape(tf.matmul(flat, kernel[:depth], transpose_b=True), tf.stack([shape[0], shape[1], depth]))
    if layout_time_major and not time_major:
        d_inputs = tf.transpose(d_inputs, [1, 0, 2])
    d_kernel, d_bias = tf.split(tf.matmul(xh, flat, transpose_a=True), [depth + units, 1])
    grads = [d_inputs, d_c0, d_h0, d_kernel, d_bias[0]]
    if resets is not None:
        grads += [d_reset_c, d_reset_h]
    if peepholes is not None:
        d_i, _, d_f, d_o = tf.split(d_gates, 4, axis=2)
        grads += [
            tf.reduce_sum(d_i * c_prev, [0, 1]),
            tf.reduce_sum(d_f * c_prev, [0, 1]),
            tf.reduce_sum(d_o * c, [0, 1]),
        ]
    return grads


def zeros_where_none(grads, like):
    """Upstream gradients with None (an output nothing depends on) replaced by zeros shaped like it."""
    return [tf.zeros_like(y) if d is None else d for y, d in zip(like, grads)]


def with_gradient(
    forward,
    inputs,
    c0,
    h0,
    kernel,
    bias,
    peepholes,
    lengths,
    time_major,
    forget_bias,
    cell_clip,
    resets=None,
    reset_state=None,
    native_loop=False,
):
    """`forward` (returning outputs, cell states, c, h) as a differentiable `(outputs, c, h)` with `sequence_gradient`.

    An explicit gradient, not autodiff: autodiff of the static unroll sums the recurrent kernel's
    T gradients with one AddN, which Grappler rewrites into TemporaryVariable ops XLA cannot
    compile, and the compiled kernel has no autodiff at all. `forward` is given `resets` and
    `reset_state` only when there are resets; `native_loop` runs the gradient's reverse loop in the
    compiled kernel (see `sequence_gradient`).
    """
    settings = dict(time_major=time_major, forget_bias=forget_bias, cell_clip=cell_clip, native_loop=native_loop)
    resetting = resets is not None

    @tf.custom_gradient
    def differentiable(inputs, c0, h0, kernel, bias, *rest):
        reset = tuple(rest[:2]) if resetting else None
        peepholes = tuple(rest[2:] if resetting else rest) or None
        with_resets = dict(resets=resets, reset_state=reset) if resetting else {}
        outputs, cell_states, c, h = forward(inputs, c0, h0, kernel, bias, peepholes, lengths, **with_resets)

        def gradient(d_outputs, d_c, d_h):
            upstream = zeros_where_none((d_outputs, d_c, d_h), (outputs, c, h))
            saved = native.saved_gates(outputs) if native_loop else None  # the compiled forward keeps its gates
            return sequence_gradient(
                inputs,
                c0,
                h0,
                kernel,
                bias,
                peepholes,
                lengths,
                outputs,
                cell_states,
                upstream,
                **settings,
                **with_resets,
                saved_gates=saved,
            )

        return (outputs, c, h), gradient

    reset = tuple(reset_state) if resetting else ()
    return differentiable(inputs, c0, h0, kernel, bias, *reset, *(peepholes or ()))
