"""The GRU over a whole chunk as plain TF ops (input projection hoisted), and its explicit gradient.

Same maths as `tfstate.GRUCell` (TF1's GRU: the reset gate applies to h before the candidate's matmul):

    xw = inputs @ [gates/kernel[:depth], candidate/kernel[:depth]] + [gates/bias, candidate/bias]   # one matmul
    for t in range(T):                                      # static when T is known
        r, u = split(sigmoid(xw_gates[t] + h @ gates/kernel[depth:]))
        c = tanh(xw_candidate[t] + (r * h) @ candidate/kernel[depth:])
        h = u * h + (1 - u) * c
    (rows past their length keep their state and output zeros, like dynamic_rnn)

With `resets` (a time-major bool `[T, B]` mask, see `tfstate.resets`) a marked row starts step t
from `reset_h`. A forward path returns `(outputs, h)`; the outputs are all the gradient needs.
"""

import tensorflow as tf

from tfstate.fused.sequence import scan, valid_steps, zeros_where_none


def _time_major(inputs, time_major):
    return inputs if time_major else tf.transpose(inputs, [1, 0, 2])


def _steps(inputs):
    """The chunk length of time-major `inputs`: an int when known at graph-build time (then the loops are static)."""
    return inputs.shape[0] if inputs.shape[0] is not None else tf.shape(inputs)[0]


def _projection(inputs, gate_kernel, gate_bias, candidate_kernel, candidate_bias):
    """Every step's input part of the gates and of the candidate, `[T, B, 3H]`, from time-major `inputs`: one matmul."""
    depth, units = inputs.shape[-1], candidate_kernel.shape[-1]
    shape = tf.shape(inputs)
    kernel = tf.concat([gate_kernel[:depth], candidate_kernel[:depth]], 1)
    xw = tf.matmul(tf.reshape(inputs, [-1, depth]), kernel) + tf.concat([gate_bias, candidate_bias], 0)
    xw = tf.reshape(xw, tf.stack([shape[0], shape[1], 3 * units]))
    xw.set_shape(inputs.shape[:2].concatenate([3 * units]))
    return xw


def sequence(
    inputs, h0, gate_kernel, gate_bias, candidate_kernel, candidate_bias, lengths, time_major, resets=None, reset_h=None
):
    """The GRU over a chunk: returns `(outputs like the inputs, final h)`."""
    inputs = _time_major(inputs, time_major)
    depth, units = inputs.shape[-1], h0.shape[-1]
    xw = _projection(inputs, gate_kernel, gate_bias, candidate_kernel, candidate_bias)
    recurrent_gates, recurrent_candidate = gate_kernel[depth:], candidate_kernel[depth:]

    def step(t, h):
        h_read = h if resets is None else tf.where(tf.expand_dims(resets[t], 1), reset_h, h)
        x_gates, x_candidate = tf.split(xw[t], [2 * units, units], axis=1)
        r, u = tf.split(tf.sigmoid(x_gates + tf.matmul(h_read, recurrent_gates)), 2, axis=1)
        c = tf.tanh(x_candidate + tf.matmul(r * h_read, recurrent_candidate))
        new_h = u * h_read + (1 - u) * c
        if lengths is None:
            return new_h, (new_h,)
        valid = tf.expand_dims(t < lengths, 1)
        return tf.where(valid, new_h, h), (tf.where(valid, new_h, tf.zeros_like(new_h)),)

    (outputs,), h = scan(step, _steps(inputs), h0, [h0])
    return _time_major(outputs, time_major), h


def sequence_gradient(
    inputs,
    h0,
    gate_kernel,
    gate_bias,
    candidate_kernel,
    candidate_bias,
    lengths,
    outputs,
    upstream,
    time_major,
    resets=None,
    reset_h=None,
):
    """Backprop through a chunk from its outputs: gradients for (inputs, h0, the four weights[, reset_h]).

    Two large matmuls recompute every step's gates and candidate from `[x_t, h_{t-1}]`, and their
    derivatives are formed for all steps at once; a reverse loop chains them, carrying dh with two
    small matmuls per step (the candidate's `[B, H] @ [H, H]`, then the gates' `[B, 2H] @ [2H, H]`);
    two more large matmuls give the weights' gradients, one the inputs'. At a reset the gradient
    of the state the step read goes to `reset_h`, not to the step before.
    """
    d_outputs, d_h = upstream
    inputs, outputs, d_outputs = (_time_major(t, time_major) for t in (inputs, outputs, d_outputs))
    depth, units = inputs.shape[-1], h0.shape[-1]
    shape = tf.shape(inputs)
    h_prev = tf.concat([h0[None], outputs], 0)[:-1]  # what step t read, for every step a row runs
    valid = valid_steps(lengths, shape[0], inputs.dtype)
    marked = None  # [T, B, 1]: the steps that start from reset_h (and run)
    if resets is not None:
        marked = resets[:, :, None] if valid is None else tf.logical_and(resets[:, :, None], valid > 0)
        h_prev = tf.where(marked, reset_h[None], h_prev)
    flat_inputs, flat_h = tf.reshape(inputs, [-1, depth]), tf.reshape(h_prev, [-1, units])
    xh = tf.concat([flat_inputs, flat_h], 1)
    r, u = tf.split(tf.sigmoid(tf.nn.bias_add(tf.matmul(xh, gate_kernel), gate_bias)), 2, axis=1)
    xrh = tf.concat([flat_inputs, r * flat_h], 1)
    c = tf.tanh(tf.nn.bias_add(tf.matmul(xrh, candidate_kernel), candidate_bias))
    as_steps = lambda flat: tf.reshape(flat, tf.shape(h_prev))
    # d h_t / d (candidate's pre-activation), d h_t / d (u's), d (r h) / d (r's) / d (r h), d h_t / d h_{t-1} direct
    d_candidate = as_steps((1 - u) * (1 - c * c))
    d_update = as_steps((flat_h - c) * u * (1 - u))
    d_reset_gate = as_steps(flat_h * r * (1 - r))
    r, u = as_steps(r), as_steps(u)
    d_outputs = d_outputs if valid is None else d_outputs * valid  # padded outputs are constants
    # materialized transposes: Grappler would fold a plain transpose into each step's MatMul as
    # transpose_b, which oneDNN runs ~3x slower at these shapes (see sequence.sequence_gradient)
    recurrent_gates_t = tf.raw_ops.Snapshot(input=tf.transpose(gate_kernel[depth:]))
    recurrent_candidate_t = tf.raw_ops.Snapshot(input=tf.transpose(candidate_kernel[depth:]))

    def step(t, carry):
        dh, d_reset = carry
        dh = dh + d_outputs[t]
        d_c = dh * d_candidate[t]
        d_rh = tf.matmul(d_c, recurrent_candidate_t)
        d_gates = tf.concat([d_rh * d_reset_gate[t], dh * d_update[t]], 1)
        dh_prev = dh * u[t] + d_rh * r[t] + tf.matmul(d_gates, recurrent_gates_t)
        if valid is not None:  # rows past their length pass dh through untouched
            d_c, d_gates = d_c * valid[t], d_gates * valid[t]
            dh_prev = tf.where(valid[t] > 0, dh_prev, dh)
        if marked is not None:  # a reset row read reset_h at this step: its gradient stops there
            d_reset = d_reset + tf.where(marked[t], dh_prev, 0.0)
            dh_prev = tf.where(marked[t], 0.0, dh_prev)
        return (dh_prev, d_reset), (d_gates, d_c)

    (d_gates, d_c), (d_h0, d_reset) = scan(
        step, _steps(inputs), (d_h, tf.zeros_like(d_h)), [tf.tile(d_h, [1, 2]), d_h], reverse=True
    )
    d_gates, d_c = tf.reshape(d_gates, [-1, 2 * units]), tf.reshape(d_c, [-1, units])
    input_kernel = tf.concat([gate_kernel[:depth], candidate_kernel[:depth]], 1)
    d_inputs = tf.matmul(tf.concat([d_gates, d_c], 1), input_kernel, transpose_b=True)
    d_inputs = _time_major(tf.reshape(d_inputs, tf.stack([shape[0], shape[1], depth])), time_major)
    grads = [
        d_inputs,
        d_h0,
        tf.matmul(xh, d_gates, transpose_a=True),
        tf.reduce_sum(d_gates, 0),
        tf.matmul(xrh, d_c, transpose_a=True),
        tf.reduce_sum(d_c, 0),
    ]
    return grads + ([d_reset] if resets is not None else [])


def with_gradient(
    forward,
    inputs,
    h0,
    gate_kernel,
    gate_bias,
    candidate_kernel,
    candidate_bias,
    lengths,
    time_major,
    resets=None,
    reset_h=None,
):
    """`forward` (returning outputs, h) as a differentiable `(outputs, h)` with `sequence_gradient`.

    An explicit gradient, for the reason `tfstate.fused.sequence.with_gradient` gives (autodiff of
    the static unroll does not compile at this size). `forward` is given `resets` and `reset_h`
    only when there are resets.
    """
    resetting = resets is not None

    @tf.custom_gradient
    def differentiable(inputs, h0, gate_kernel, gate_bias, candidate_kernel, candidate_bias, *reset):
        weights = (gate_kernel, gate_bias, candidate_kernel, candidate_bias)
        with_resets = dict(resets=resets, reset_h=reset[0]) if resetting else {}
        outputs, h = forward(inputs, h0, *weights, lengths, time_major=time_major, **with_resets)

        def gradient(d_outputs, d_h):
            upstream = zeros_where_none((d_outputs, d_h), (outputs, h))
            return sequence_gradient(inputs, h0, *weights, lengths, outputs, upstream, time_major, **with_resets)

        return (outputs, h), gradient

    return differentiable(
        inputs, h0, gate_kernel, gate_bias, candidate_kernel, candidate_bias, *((reset_h,) if resetting else ())
    )
