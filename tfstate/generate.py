"""In-graph autoregressive generation: an RNN's output fed back as its next input, all steps in one run.

    output[0], state = cell(first_input, initial_state)
    for k in 1 .. num_steps-1:                       # a tf.while_loop
        output[k], state = cell(next_input_fn(output[k-1]), state)
"""

import tensorflow as tf

from tfstate._checks import check_state, require_graph_mode
from tfstate.state import owner_of_initial_state


def _check_num_steps(num_steps):
    """A Python int must be >= 1 now; a tensor is checked in-graph. Returns it as an int32 tensor."""
    if isinstance(num_steps, int):
        if num_steps < 1:
            raise ValueError(f"generate needs num_steps >= 1; got {num_steps}.")
        return tf.constant(num_steps)
    num_steps = tf.convert_to_tensor(num_steps)
    if num_steps.dtype not in (tf.int32, tf.int64) or num_steps.shape.rank not in (None, 0):
        raise ValueError(f"generate needs num_steps as an int or an int32 scalar tensor; got {num_steps!r}.")
    num_steps = tf.cast(num_steps, tf.int32)
    check = tf.debugging.Assert(
        num_steps >= 1, [tf.strings.format("generate needs num_steps >= 1; got {}.", num_steps)])
    with tf.control_dependencies([check]):
        return tf.identity(num_steps)


def generate(cell, first_input, num_steps, next_input_fn, initial_state=None, scope=None):
    """Runs `cell` for `num_steps` steps, each step's input computed in-graph from the previous output.

    Args:
      cell: an RNN cell; an already used cell keeps its weights (no new trainable variables).
      first_input: `[batch, depth]`, the input of step 0.
      num_steps: a Python int or an int32 scalar tensor (e.g. a placeholder), at least 1.
      next_input_fn: maps an output `[batch, output_size]` to the next input `[batch, depth]`
        (e.g. a dense layer built with `reuse=True`, or sampling + an embedding lookup).
      initial_state: the state to start from (zeros by default). Given a `StatefulRNN`'s
        `initial_state`, generation starts from that RNN's carried state (honouring its step flag
        and reset rows) without feeding the RNN's inputs; keep the result with
        `rnn.state.keep(final_state)`.
      scope: variable scope for a cell not yet built (default "rnn", as `dynamic_rnn`).

    Returns:
      `(outputs [batch, num_steps, output_size], final_state)`.
    """
    require_graph_mode("tfstate.generate")
    first_input = tf.convert_to_tensor(first_input)
    if first_input.shape.rank != 2 or first_input.shape[-1] is None:
        raise ValueError(f"generate needs first_input [batch, depth] with a known depth; got {first_input.shape}.")
    num_steps = _check_num_steps(num_steps)
    batch = tf.shape(first_input)[0]
    if initial_state is None:
        initial_state = cell.zero_state(batch, first_input.dtype)
    else:
        check_state(cell.state_size, initial_state, "generate's initial_state")
        owner = owner_of_initial_state(initial_state)
        if owner is not None:
            initial_state = owner.initial_state_for(batch)

    def body(step, previous_output, state, outputs):
        next_input = next_input_fn(previous_output)
        if not next_input.shape.is_compatible_with(first_input.shape):
            raise ValueError(
                f"next_input_fn must return the cell's input shape {first_input.shape} (like first_input); "
                f"it returned {next_input.shape}.")
        output, state = cell(tf.cast(next_input, first_input.dtype), state)
        return step + 1, output, state, outputs.write(step, output)

    with tf.compat.v1.variable_scope(scope or "rnn"):  # where a new cell makes its weights, as in dynamic_rnn
        first_output, state = cell(first_input, initial_state)
    outputs = tf.TensorArray(first_output.dtype, size=num_steps, element_shape=first_output.shape)
    first_loop_vars = (tf.constant(1), first_output, state, outputs.write(0, first_output))
    _, _, final_state, outputs = tf.while_loop(lambda step, *_: step < num_steps, body, first_loop_vars)
    return tf.transpose(outputs.stack(), [1, 0, 2]), final_state
