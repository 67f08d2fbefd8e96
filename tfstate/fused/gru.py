"""TF1 contrib's fused GRU cells, `GRUBlockCellV2` and `GRUBlockCell`, and the whole-chunk path of every GRU.

One step runs TensorFlow's `GRUBlockCell` kernel (TensorFlow registers no gradient for it; TF1
contrib did, so this module registers one when it is imported). A whole chunk (`unroll`, what
`tfstate.dynamic_rnn` and `stateful_dynamic_rnn` call) runs one of:

    "native"  tfstate's compiled GRU kernel (`tfstate.native`: float32, Linux with a C++ compiler,
              no GPU visible), with the explicit gradient of `gru_sequence.sequence_gradient`
    "xla"     `gru_sequence.sequence` (the input projection hoisted into one matmul, a static
              unroll) as one XLA cluster, with the same explicit gradient; needs the chunk length
              at graph-build time
    "loop"    the same as a `tf.while_loop` of TF ops, with TensorFlow's autodiff (any length, any dtype)

"auto" picks "native" where the kernel is built, else "xla" when the chunk length is known (up to
`sequence.MAX_STATIC_STEPS` steps), else "loop". `tfstate.GRUCell` with its default tanh runs a
chunk on the compiled kernel too under `tfstate.dynamic_rnn` where the kernel runs it (`unroll_of`):
the same maths and variables, so nothing changes but speed.
"""

import functools

import tensorflow as tf

from tfstate import native
from tfstate._checks import check_state, require_graph_mode
from tfstate.cells import GRUCell
from tfstate.fused import gru_sequence, sequence
from tfstate.resets import time_major_resets

IMPLEMENTATIONS = ("auto", "native", "xla", "loop")


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
    return (
        d_x + d_x_gates,
        d_h * u + d_rh * r + d_h_gates,
        tf.matmul(tf.concat([x, h], 1), d_ru_bar, transpose_a=True),
        tf.matmul(tf.concat([x, r * h], 1), d_c_bar, transpose_a=True),
        tf.reduce_sum(d_ru_bar, 0),
        tf.reduce_sum(d_c_bar, 0),
    )


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
    `implementation` picks the whole-chunk path of `unroll` (see the module docstring).
    """

    _default_name = "gru_cell"

    def __init__(self, num_units=None, cell_size=None, reuse=None, name="gru_cell", dtype=None, implementation="auto"):
        if (num_units is None) == (cell_size is None):
            raise ValueError(
                f"{type(self).__name__} needs exactly one of num_units and cell_size (TF1's old name); "
                f"got num_units={num_units}, cell_size={cell_size}."
            )
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"{type(self).__name__}(implementation={implementation!r}) is not one of {IMPLEMENTATIONS}."
            )
        super().__init__(num_units if num_units is not None else cell_size, reuse=reuse, name=name, dtype=dtype)
        self._implementation = implementation

    def _build(self, input_depth, dtype):
        if dtype != tf.float32:
            raise ValueError(
                f"{type(self).__name__} runs TensorFlow's GRUBlockCell kernel, which is float32 only; "
                f"the inputs are {dtype.name}. Use tfstate.GRUCell for other dtypes."
            )
        super()._build(input_depth, dtype)

    def call(self, inputs, state):
        _, _, _, new_h = tf.raw_ops.GRUBlockCell(
            x=inputs,
            h_prev=state,
            w_ru=self._gate_kernel,
            w_c=self._candidate_kernel,
            b_ru=self._gate_bias,
            b_c=self._candidate_bias,
        )
        return new_h, new_h

    def unroll(self, inputs, initial_state, sequence_length=None, time_major=False, resets=None, reset_state=None):
        """Runs the cell over a whole chunk: `(outputs, final_state)`, like `dynamic_rnn` (see `unroll_gru`)."""
        return unroll_gru(
            self, inputs, initial_state, sequence_length, time_major, resets, reset_state, self._implementation
        )


class GRUBlockCell(GRUBlockCellV2):
    """TF1 contrib's `GRUBlockCell`: `GRUBlockCellV2` under its older variable names.

    Variables `gru_cell/w_ru`, `b_ru`, `w_c`, `b_c` (what TF1 checkpoints of this cell hold), with
    the same shapes and meaning as `gates/kernel`, `gates/bias`, `candidate/kernel`, `candidate/bias`.
    """

    _variable_names = ("w_ru", "b_ru", "w_c", "b_c")


def has_gru_maths(cell):
    """Whether `cell` steps GRUCell's maths with GRUCell's weights (GRUCell with tanh, GRUBlockCell(V2)).

    A subclass with a `call` of its own (another maths, e.g. `CudnnCompatibleGRUCell`) does not.
    """
    return (
        isinstance(cell, GRUCell)
        and type(cell).call in (GRUCell.call, GRUBlockCellV2.call)
        and cell._activation in (tf.math.tanh, tf.nn.tanh)
    )


def unroll_of(cell, dtype):
    """The whole-chunk `unroll` of `cell` for inputs of `dtype`, or None where it steps.

    The fused cells' own `unroll`; for a `GRUCell` with GRUCell's maths, `unroll_gru` where the
    compiled kernel runs it (float32, the kernel built here, no GPU). Elsewhere a GRUCell steps as
    in TF1: for a GRU the XLA path measured no faster than TF1's stepped loop (docs/benchmarks.md).
    """
    unroll = getattr(cell, "unroll", None)
    if unroll is None and has_gru_maths(cell) and implementation_for("auto", None, False, dtype) == "native":
        unroll = functools.partial(unroll_gru, cell)
    return unroll


def _ensure_built(cell, inputs):
    """Creates the cell's variables as its first `__call__` would (in the scope of this first use)."""
    if cell.built:
        return
    if inputs.shape[-1] is None:
        raise ValueError(
            f"{type(cell).__name__} needs inputs with a known last dimension (the input depth); "
            f"got shape {inputs.shape}. Give the input placeholder a static last dimension."
        )
    with cell._first_use():
        cell._build(inputs.shape[-1], cell.dtype or inputs.dtype.base_dtype)


def implementation_for(implementation, inputs, time_major, dtype=None):
    """The path a GRU's `unroll` takes: `implementation`, or the one "auto" picks (see the module docstring).

    `dtype` stands for the inputs' when `inputs` is None (then "auto" is "native" or "loop").
    """
    if implementation != "auto":
        return implementation
    if not tf.config.list_physical_devices("GPU") and native.auto_reason(dtype or inputs.dtype) is None:
        return "native"
    steps = None if inputs is None else inputs.shape[0 if time_major else 1]
    return "xla" if steps is not None and steps <= sequence.MAX_STATIC_STEPS else "loop"


def unroll_gru(
    cell,
    inputs,
    initial_state,
    sequence_length=None,
    time_major=False,
    resets=None,
    reset_state=None,
    implementation="auto",
):
    """Runs a GRU with GRUCell's maths and weights over a whole chunk: `(outputs, final_state)`, like `dynamic_rnn`.

    Args:
      cell: a `GRUCell` with tanh activation, or a `GRUBlockCell(V2)` (see `has_gru_maths`).
      inputs: `[batch, time, depth]`, or `[time, batch, depth]` with `time_major=True`.
      initial_state: `[batch, num_units]`.
      sequence_length: optional `[batch]` ints; rows stop at their length: their outputs past it
        are zeros and their final state is the state at their last valid step.
      time_major: layout of `inputs` and of the returned outputs.
      resets: optional bool mask laid out like the inputs' first two axes; a marked row starts
        that step from `reset_state` (see `tfstate.resets`).
      reset_state: `[batch, num_units]` a reset starts from; zeros by default.
      implementation: "auto", "native", "xla" or "loop" (see the module docstring).
    """
    who = f"{type(cell).__name__}.unroll"
    inputs = tf.convert_to_tensor(inputs)
    if inputs.shape.rank != 3:
        raise ValueError(f"{who} needs 3-D inputs; got shape {inputs.shape}.")
    require_graph_mode(who)
    check_state(cell.state_size, initial_state, f"The initial state given to {who}")
    lengths = sequence.sequence_lengths(sequence_length, inputs, time_major, who)
    with_resets = {}
    if resets is not None:
        if reset_state is None:
            reset_state = cell.zero_state(tf.shape(inputs)[1 if time_major else 0], initial_state.dtype)
        check_state(cell.state_size, reset_state, f"The reset_state given to {who}")
        with_resets = dict(resets=time_major_resets(resets, inputs, time_major, who), reset_h=reset_state)
    implementation = implementation_for(implementation, inputs, time_major)
    _ensure_built(cell, inputs)
    with tf.name_scope(type(cell).__name__ + "Unroll"):
        weights = [
            tf.convert_to_tensor(weight)
            for weight in (cell._gate_kernel, cell._gate_bias, cell._candidate_kernel, cell._candidate_bias)
        ]
        if implementation == "loop":  # plain TF ops: TensorFlow's own autodiff
            return gru_sequence.sequence(inputs, initial_state, *weights, lengths, time_major, **with_resets)
        if implementation == "native":
            forward = native.gru_sequence
        else:
            forward = tf.function(gru_sequence.sequence, jit_compile=True, autograph=False)
        return gru_sequence.with_gradient(forward, inputs, initial_state, *weights, lengths, time_major, **with_resets)
