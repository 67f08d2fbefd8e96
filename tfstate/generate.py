"""In-graph autoregressive generation: an RNN's output fed back as its next input, all steps in one run.

    output[0], state = cell(first_input, initial_state)
    for k in 1 .. num_steps-1:                       # a tf.while_loop
        output[k], state = cell(next_input_fn(output[k-1]), state)

With `jit_compile=True` the loop (cell steps and `next_input_fn`) is one XLA cluster: a
`tf.function(jit_compile=True)` called from the graph. docs/benchmarks.md has the measurements.
"""

import tensorflow as tf

from tfstate._checks import check_state, require_graph_mode


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


def generate(cell, first_input, num_steps, next_input_fn, initial_state=None, scope=None, jit_compile=False,
             max_steps=None):
    """Runs `cell` for `num_steps` steps, each step's input computed in-graph from the previous output.

    Args:
      cell: an RNN cell; an already used cell keeps its weights (no new trainable variables).
      first_input: `[batch, depth]`, the input of step 0.
      num_steps: a Python int or an int32 scalar tensor (e.g. a placeholder), at least 1.
      next_input_fn: maps an output `[batch, output_size]` to the next input `[batch, depth]`
        (e.g. a dense layer, or sampling + an embedding lookup). It is called inside the loop, so
        layers in it must reuse weights built before (`reuse=True`, or variables made earlier).
      initial_state: the state to start from: zeros by default, a nest of tensors like
        `cell.state_size`, or a `StatefulRNN` / `RNNState` to continue its carried state (for
        generate's batch, honouring its step flag and reset rows, without feeding the RNN's
        inputs; keep the result with `rnn.state.keep(final_state)`), or a `KeyedRNN` /
        `KeyedLookup` to continue its keys' streams (generate's batch must be one row per key;
        keep the result with `lookup.keep(final_state)`). Any object with
        `initial_state_for(batch)` and `initial_state` is continued the same way.
      scope: variable scope for a cell not yet built (default "rnn", as `dynamic_rnn`).
      jit_compile: run steps 1 .. num_steps-1 (each a cell step and `next_input_fn`) as one XLA
        cluster instead of a `tf.while_loop` of TensorFlow ops: same results (float32, to 1e-5),
        fewer per-step costs. Every op of the cell and of `next_input_fn` must have an XLA kernel;
        `next_input_fn` must only reuse variables (it is also called once outside the cluster,
        on step 0's output, which creates any it makes); random ops draw from XLA's generator.
        Needs a static length: `num_steps` a Python int, or a tensor with `max_steps` given.
      max_steps: with `jit_compile=True` and a tensor `num_steps`, the largest `num_steps` a run
        may feed (checked in-graph); the compiled loop keeps room for that many outputs.

    Returns:
      `(outputs [batch, num_steps, output_size], final_state)`.
    """
    require_graph_mode("tfstate.generate")
    first_input = tf.convert_to_tensor(first_input)
    if first_input.shape.rank != 2 or first_input.shape[-1] is None:
        raise ValueError(f"generate needs first_input [batch, depth] with a known depth; got {first_input.shape}.")
    static_steps = _static_steps(num_steps, jit_compile, max_steps)
    dynamic = not isinstance(num_steps, int)
    num_steps = _check_num_steps(num_steps)
    if jit_compile and dynamic:
        check = tf.debugging.Assert(num_steps <= max_steps, [tf.strings.format(
            "generate was built with max_steps={}; the run fed num_steps={}. Build it with a larger max_steps.",
            (max_steps, num_steps))])
        with tf.control_dependencies([check]):
            num_steps = tf.identity(num_steps)
    batch = tf.shape(first_input)[0]
    carried = _carrier(initial_state)
    if initial_state is None:
        initial_state = cell.zero_state(batch, first_input.dtype)
    elif carried is not None:
        name = carried.name if hasattr(carried, "name") else carried.state.name
        check_state(cell.state_size, carried.initial_state,
                    f"The state of {type(carried).__name__} '{name}' given to generate")
        initial_state = carried.initial_state_for(batch)
    else:
        check_state(cell.state_size, initial_state, "generate's initial_state")

    def body(step, previous_output, state, outputs):
        output, state = cell(_next_input(next_input_fn, previous_output, first_input), state)
        return step + 1, output, state, outputs.write(step, output)

    with tf.compat.v1.variable_scope(scope or "rnn"):  # where a new cell makes its weights, as in dynamic_rnn
        first_output, state = cell(first_input, initial_state)
    if jit_compile:
        return _compiled_loop(
            cell, first_input, first_output, state, num_steps, static_steps, dynamic, next_input_fn)
    outputs = tf.TensorArray(first_output.dtype, size=num_steps, element_shape=first_output.shape)
    first_loop_vars = (tf.constant(1), first_output, state, outputs.write(0, first_output))
    _, _, final_state, outputs = tf.while_loop(lambda step, *_: step < num_steps, body, first_loop_vars)
    return tf.transpose(outputs.stack(), [1, 0, 2]), final_state


def _carrier(initial_state):
    """What continues a carried state: anything with `initial_state_for(batch)` (an `RNNState`, a `KeyedRNN`,
    a `KeyedLookup`), or a `StatefulRNN`'s state; None for a plain nest of tensors."""
    if hasattr(initial_state, "initial_state_for"):
        return initial_state
    state = getattr(initial_state, "state", None)
    return state if hasattr(state, "initial_state_for") else None


def _static_steps(num_steps, jit_compile, max_steps):
    """The compiled loop's number of output slots (None without jit_compile); checks the arguments."""
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"generate needs max_steps as an int >= 1 (or None); got {max_steps!r}.")
    if not jit_compile:
        if max_steps is not None:
            raise ValueError("generate's max_steps applies only with jit_compile=True; drop it or pass jit_compile=True.")
        return None
    if isinstance(num_steps, int):
        if max_steps is not None and num_steps > max_steps:
            raise ValueError(f"generate got num_steps={num_steps}, more than max_steps={max_steps}; "
                             "raise max_steps or drop it (an int num_steps needs none).")
        return num_steps
    if max_steps is None:
        raise ValueError(
            "generate(jit_compile=True) needs a static length: num_steps as a Python int, or max_steps=<int> "
            f"with a tensor num_steps; got num_steps={num_steps!r} and no max_steps.")
    return max_steps


def _compiled_loop(cell, first_input, first_output, state, num_steps, slots, dynamic, next_input_fn):
    """Steps 1 .. num_steps-1 in one `tf.function(jit_compile=True)`; returns `(outputs, final_state)`."""
    # Traced once here, outside the compiled function, so that next_input_fn creates whatever
    # variables it makes (and its shape is checked); the run prunes this unused copy.
    _next_input(next_input_fn, first_output, first_input)
    if slots == 1:
        return tf.expand_dims(first_output, 1), state
    flat_state = tf.nest.flatten(state)

    def loop(num_steps, first_output, flat_state):
        outputs = tf.TensorArray(first_output.dtype, size=slots, element_shape=first_output.shape)

        def body(step, previous_output, flat_state, outputs):
            next_input = _next_input(next_input_fn, previous_output, first_input)
            output, new_state = cell(next_input, tf.nest.pack_sequence_as(state, flat_state))
            return step + 1, output, tf.nest.flatten(new_state), outputs.write(step, output)

        _, _, flat_state, outputs = tf.while_loop(
            lambda step, *_: step < num_steps, body, (tf.constant(1), first_output, flat_state,
                                                      outputs.write(0, first_output)),
            maximum_iterations=slots - 1)
        return tf.transpose(outputs.stack(), [1, 0, 2]), flat_state

    compiled = tf.function(loop, jit_compile=True, autograph=False)
    outputs, flat_state = compiled(num_steps, first_output, flat_state)
    if dynamic:
        outputs = outputs[:, :num_steps]
    return outputs, tf.nest.pack_sequence_as(state, flat_state)


def _next_input(next_input_fn, output, first_input):
    next_input = next_input_fn(output)
    if not next_input.shape.is_compatible_with(first_input.shape):
        raise ValueError(
            f"next_input_fn must return the cell's input shape {first_input.shape} (like first_input); "
            f"it returned {next_input.shape}.")
    return tf.cast(next_input, first_input.dtype)
