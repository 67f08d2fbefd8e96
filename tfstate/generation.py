"""In-graph autoregressive generation: an RNN's output fed back as its next input, all steps in one run.

    output[0], state = cell(first_input, initial_state)
    for k in 1 .. num_steps-1:
        output[k], state = cell(next_input_fn(output[k-1]), state)

Steps 1 .. num_steps-1 take one of two paths, with the same results (float32, to 1e-5):

    compiled  one XLA cluster, a `tf.function(jit_compile=True)` called from the graph: all the
              steps in one call, or with a tensor `num_steps` CHUNK_STEPS steps a call in a tf.while_loop
    loop      a `tf.while_loop` of TensorFlow ops: any op, TensorFlow's random generator

`jit_compile=None` (the default) takes the compiled path where `tfstate._xla` finds at graph-build
time that it compiles here and computes what the loop computes, else the loop; True or False
force one. docs/benchmarks.md has the measurements.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable

import tensorflow as tf

from tfstate import _xla
from tfstate._checks import check_state, require_graph_mode
from tfstate._types import Scope, StateNest
from tfstate.cells import RNNCell
from tfstate.keyed import KeyedLookup
from tfstate.keyed_rnn import KeyedRNN
from tfstate.rnn import StatefulRNN
from tfstate.state import RNNState

CHUNK_STEPS = 64  # steps per compiled call when num_steps is a tensor (a call costs ~0.2 ms more than its steps)

_log = logging.getLogger("tfstate")


def _check_steps(num_steps, max_steps):
    """Checks num_steps (an int now, a tensor in-graph) against 1 and `max_steps`; returns it as an int32 tensor."""
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"generate needs max_steps as an int >= 1 (or None); got {max_steps!r}.")
    if isinstance(num_steps, bool):
        raise ValueError(f"generate needs num_steps as an int or an int32 scalar tensor; got {num_steps!r}.")
    if isinstance(num_steps, numbers.Integral):  # a Python or NumPy int
        if num_steps < 1:
            raise ValueError(f"generate needs num_steps >= 1; got {num_steps}.")
        if max_steps is not None and num_steps > max_steps:
            raise ValueError(
                f"generate got num_steps={num_steps}, more than max_steps={max_steps}; "
                "raise max_steps or drop it (an int num_steps needs none)."
            )
        return tf.constant(int(num_steps))
    num_steps = tf.convert_to_tensor(num_steps)
    if num_steps.dtype not in (tf.int32, tf.int64) or num_steps.shape.rank not in (None, 0):
        raise ValueError(f"generate needs num_steps as an int or an int32 scalar tensor; got {num_steps!r}.")
    num_steps = tf.cast(num_steps, tf.int32)
    checks = [
        tf.debugging.Assert(num_steps >= 1, [tf.strings.format("generate needs num_steps >= 1; got {}.", num_steps)])
    ]
    if max_steps is not None:
        checks.append(
            tf.debugging.Assert(
                num_steps <= max_steps,
                [
                    tf.strings.format(
                        "generate was built with max_steps={}; the run fed num_steps={}. "
                        "Build it with a larger max_steps.",
                        (max_steps, num_steps),
                    )
                ],
            )
        )
    with tf.control_dependencies(checks):
        return tf.identity(num_steps)


def generate(
    cell: RNNCell,
    first_input: tf.Tensor,
    num_steps: int | tf.Tensor,
    next_input_fn: Callable[[tf.Tensor], tf.Tensor],
    initial_state: StateNest | StatefulRNN | RNNState | KeyedRNN | KeyedLookup | None = None,
    scope: Scope | None = None,
    jit_compile: bool | None = None,
    max_steps: int | None = None,
) -> tuple[tf.Tensor, StateNest]:
    """Runs `cell` for `num_steps` steps, each step's input computed in-graph from the previous output.

    Args:
      cell: an RNN cell; an already used cell keeps its weights (no new trainable variables).
      first_input: `[batch, depth]`, the input of step 0.
      num_steps: a Python int or an int32 scalar tensor (e.g. a placeholder), at least 1.
      next_input_fn: maps an output `[batch, output_size]` to the next input `[batch, depth]`
        (e.g. a dense layer, or sampling + an embedding lookup). It is called once on step 0's
        output outside any loop (that call creates whatever variables it makes; runs prune it),
        then inside the loop, where layers must reuse those weights (`reuse=True` or
        `tf.compat.v1.AUTO_REUSE`, or variables made earlier).
      initial_state: the state to start from: zeros by default, a nest of tensors like
        `cell.state_size`, or a `StatefulRNN` / `RNNState` to continue its carried state (for
        generate's batch, honouring its step flag and reset rows, without feeding the RNN's
        inputs; keep the result with `rnn.state.keep(final_state)`), or a `KeyedRNN` /
        `KeyedLookup` to continue its keys' streams (generate's batch must be one row per key;
        keep the result with `lookup.keep(final_state)`). Any object with
        `initial_state_for(batch)` and `initial_state` is continued the same way.
      scope: variable scope for a cell not yet built (default "rnn", as `dynamic_rnn`).
      jit_compile: how steps 1 .. num_steps-1 (each a cell step and `next_input_fn`) run. None
        (default): as one XLA cluster where that is found at graph-build time to compile here and to
        compute the same (every op of the cell and of `next_input_fn` lowers to XLA, no random op
        has a seed), else as a `tf.while_loop` of TensorFlow ops; a fallback is logged (logger
        "tfstate", INFO) with its reason. True: one XLA cluster regardless (an op XLA cannot
        compile fails the first run). False: the `tf.while_loop`. The results are the same
        (float32, to 1e-5); random ops in the XLA cluster draw from XLA's generator, which ignores
        seeds. The first run compiles the cluster (~0.3 s for a 256-unit LSTM).
      max_steps: optional, the largest `num_steps` a run may feed (checked in-graph).

    Returns:
      `(outputs [batch, num_steps, output_size], final_state)`.
    """
    require_graph_mode("tfstate.generate")
    if jit_compile not in (None, True, False):
        raise ValueError(f"generate's jit_compile must be None (choose), True or False; got {jit_compile!r}.")
    first_input = tf.convert_to_tensor(first_input)
    if first_input.shape.rank != 2 or first_input.shape[-1] is None:
        raise ValueError(f"generate needs first_input [batch, depth] with a known depth; got {first_input.shape}.")
    static_steps = (
        int(num_steps) if isinstance(num_steps, numbers.Integral) and not isinstance(num_steps, bool) else None
    )
    num_steps = _check_steps(num_steps, max_steps)
    batch = tf.shape(first_input)[0]
    carried = _carrier(initial_state)
    if initial_state is None:
        initial_state = cell.zero_state(batch, first_input.dtype)
    elif carried is not None:
        name = carried.name if hasattr(carried, "name") else carried.state.name
        check_state(
            cell.state_size, carried.initial_state, f"The state of {type(carried).__name__} '{name}' given to generate"
        )
        initial_state = carried.initial_state_for(batch)
    else:
        check_state(cell.state_size, initial_state, "generate's initial_state")

    with tf.compat.v1.variable_scope(scope or "rnn"):  # where a new cell makes its weights, as in dynamic_rnn
        first_output, state = cell(first_input, initial_state)
    _next_input(next_input_fn, first_output, first_input)  # creates next_input_fn's variables; runs prune it
    if static_steps == 1:
        return tf.expand_dims(first_output, 1), state
    steps = None
    if jit_compile is not False:
        slots = CHUNK_STEPS if static_steps is None else static_steps - 1
        steps = _compiled_steps(cell, next_input_fn, first_input, first_output, state, slots)
        reason = None if jit_compile else _xla.problem(steps)
        if reason is not None:
            _log.info("tfstate.generate runs a tf.while_loop of TensorFlow ops, not one XLA cluster: %s.", reason)
            steps = None
    if steps is None:
        outputs, final_state = _while_loop(cell, next_input_fn, first_input, first_output, state, num_steps)
    else:
        flat_state = tf.nest.flatten(state)
        if static_steps is None:
            outputs, flat_state = _in_chunks(steps, num_steps, first_output, flat_state)
        else:
            outputs, _, flat_state = steps(tf.constant(1), num_steps, first_output, flat_state)
            outputs = tf.concat([first_output[None], outputs], 0)
        final_state = tf.nest.pack_sequence_as(state, flat_state)
    return tf.transpose(outputs, [1, 0, 2]), final_state


def _while_loop(cell, next_input_fn, first_input, first_output, state, num_steps):
    """Steps 1 .. num_steps-1 as a `tf.while_loop` of TF ops: `(outputs [time, batch, output_size], final_state)`."""

    def body(step, previous_output, state, outputs):
        output, state = cell(_next_input(next_input_fn, previous_output, first_input), state)
        return step + 1, output, state, outputs.write(step, output)

    outputs = tf.TensorArray(first_output.dtype, size=num_steps, element_shape=first_output.shape)
    first_loop_vars = (tf.constant(1), first_output, state, outputs.write(0, first_output))
    _, _, final_state, outputs = tf.while_loop(lambda step, *_: step < num_steps, body, first_loop_vars)
    return outputs.stack(), final_state


def _carrier(initial_state):
    """What continues a carried state: anything with `initial_state_for(batch)` (an `RNNState`, a `KeyedRNN`,
    a `KeyedLookup`), or a `StatefulRNN`'s state; None for a plain nest of tensors."""
    if hasattr(initial_state, "initial_state_for"):
        return initial_state
    state = getattr(initial_state, "state", None)
    return state if hasattr(state, "initial_state_for") else None


def _compiled_steps(cell, next_input_fn, first_input, first_output, state, slots):
    """Up to `slots` steps as one XLA cluster: a concrete `tf.function(jit_compile=True)`, traced here.

    `steps(start, end, previous_output, flat_state)` runs steps start .. min(end, start + slots) - 1
    and returns their outputs `[slots, batch, output_size]` (zeros past `end`), the last output and
    the flat state.
    """

    def steps(start, end, previous_output, flat_state):
        outputs = tf.TensorArray(previous_output.dtype, size=slots, element_shape=previous_output.shape)

        def body(k, previous_output, flat_state, outputs):
            next_input = _next_input(next_input_fn, previous_output, first_input)
            output, new_state = cell(next_input, tf.nest.pack_sequence_as(state, flat_state))
            return k + 1, output, tf.nest.flatten(new_state), outputs.write(k, output)

        _, last_output, flat_state, outputs = tf.while_loop(
            lambda k, *_: start + k < end,
            body,
            (tf.constant(0), previous_output, flat_state, outputs),
            maximum_iterations=slots,
        )
        return outputs.stack(), last_output, flat_state

    step_spec = tf.TensorSpec([], tf.int32)
    return tf.function(steps, jit_compile=True, autograph=False).get_concrete_function(
        step_spec,
        step_spec,
        tf.TensorSpec.from_tensor(first_output),
        [tf.TensorSpec.from_tensor(part) for part in tf.nest.flatten(state)],
    )


def _in_chunks(steps, num_steps, first_output, flat_state):
    """Steps 1 .. num_steps-1, CHUNK_STEPS a compiled call, in a `tf.while_loop`: `(outputs [time, ..], flat_state)`."""

    def body(index, start, previous_output, flat_state, chunks):
        outputs, last_output, flat_state = steps(start, num_steps, previous_output, flat_state)
        return index + 1, start + CHUNK_STEPS, last_output, flat_state, chunks.write(index, outputs)

    chunks = tf.TensorArray(
        first_output.dtype,
        size=0,
        dynamic_size=True,
        infer_shape=False,
        element_shape=tf.TensorShape([None]).concatenate(first_output.shape),
    )
    _, _, _, flat_state, chunks = tf.while_loop(
        lambda index, start, *_: start < num_steps,
        body,
        (tf.constant(1), tf.constant(1), first_output, flat_state, chunks.write(0, first_output[None])),
    )
    return chunks.concat()[:num_steps], flat_state


def _next_input(next_input_fn, output, first_input):
    next_input = next_input_fn(output)
    if not next_input.shape.is_compatible_with(first_input.shape):
        raise ValueError(
            f"next_input_fn must return the cell's input shape {first_input.shape} (like first_input); "
            f"it returned {next_input.shape}."
        )
    return tf.cast(next_input, first_input.dtype)
