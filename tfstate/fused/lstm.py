"""TF1 contrib's fused LSTM cells, `LSTMBlockCell` and `LSTMBlockFusedCell`, with a whole-chunk `unroll`.

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

`unroll` is what `tfstate.dynamic_rnn` and `stateful_dynamic_rnn` call. Its implementations (the
`implementation` argument; "auto" picks the first that applies):

    "native"  tfstate's compiled kernel (`tfstate.native`): float32, Linux with a C++ compiler, no GPU
              visible (variants for AVX-512, AVX2 + FMA and any other CPU). The fastest on CPU, in
              training too: the gradient's reverse loop is compiled as well.
    "xla"     `sequence` (tfstate.fused.sequence) as one XLA cluster, statically unrolled; needs the
              chunk length at graph-build time.
    "block"   TensorFlow's `BlockLSTM` kernel over the whole chunk (float32 / float16).
    "loop"    `sequence` as a `tf.while_loop` of TF ops (any dtype).

All four compute the same values (to float rounding) and the same gradients. "native", "xla" and
"block" share one explicit gradient (`sequence.sequence_gradient`, from the outputs and cell states
the forward returns; its reverse loop runs in the compiled kernel for "native", as TF ops
otherwise); "loop" uses TensorFlow's autodiff. docs/benchmarks.md has the measurements.
"""

import functools

import tensorflow as tf

from tfstate import native
from tfstate._checks import check_state, require_graph_mode
from tfstate.cells import LSTMStateTuple, RNNCell
from tfstate.fused import sequence
from tfstate.resets import time_major_resets

IMPLEMENTATIONS = ("auto", "native", "xla", "block", "loop")


class FusedLSTM(RNNCell):
    """Shared body of the fused LSTM cells: TF1 contrib's variables, a one-step kernel and `unroll`.

    What `FusedMultiRNNCell` relies on to run a stack of them in one XLA cluster:
    `implementation_for(inputs, time_major)` (the path `unroll` would take), `ensure_built(depth)`
    (build once, as the first call would) and `sequence_arguments()` (weights and settings).
    """

    def __init__(
        self,
        num_units,
        forget_bias=1.0,
        cell_clip=None,
        use_peephole=False,
        reuse=None,
        name=None,
        dtype=None,
        implementation="auto",
    ):
        super().__init__(reuse=reuse, name=name, dtype=dtype)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"{type(self).__name__}(implementation={implementation!r}) is not one of {IMPLEMENTATIONS}."
            )
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
        return (
            tf.convert_to_tensor(self._w_i_diag),
            tf.convert_to_tensor(self._w_f_diag),
            tf.convert_to_tensor(self._w_o_diag),
        )

    def call(self, inputs, state):
        # One step is a oneDNN matmul plus fused-by-Grappler gate ops; measured faster than TF's
        # LSTMBlockCell kernel (Eigen matmul) in tfstate.generate, so that kernel is used only
        # with implementation="block".
        c_prev, h_prev = state
        if self._implementation == "block" and inputs.dtype in (tf.float32, tf.float16):
            wci, wcf, wco, cell_clip = native.kernel_arguments(
                self._peepholes(), self._cell_clip, self._num_units, inputs.dtype
            )
            _, c, _, _, _, _, h = tf.raw_ops.LSTMBlockCell(
                x=inputs,
                cs_prev=c_prev,
                h_prev=h_prev,
                w=self._kernel,
                wci=wci,
                wcf=wcf,
                wco=wco,
                b=self._bias,
                forget_bias=self._forget_bias,
                cell_clip=cell_clip,
                use_peephole=self._use_peephole,
            )
        else:
            gates = tf.nn.bias_add(tf.matmul(tf.concat([inputs, h_prev], 1), self._kernel), self._bias)
            c, h = sequence.gates(gates, c_prev, None, None, self._peepholes(), self._forget_bias, self._cell_clip)
        return h, LSTMStateTuple(c, h)

    def ensure_built(self, inputs, scope=None, depth=None):
        """Creates the variables as the first `__call__` would, from `[.., .., depth]` inputs (or `depth`)."""
        if self.built:
            return
        depth = inputs.shape[-1] if depth is None else depth
        if depth is None:
            raise ValueError(
                f"{type(self).__name__} needs inputs with a known last dimension (the input depth); "
                f"got shape {inputs.shape}. Give the input placeholder a static last dimension."
            )
        with self._first_use(scope):
            self._build(depth, self._dtype or inputs.dtype.base_dtype)

    def sequence_arguments(self):
        """What `sequence.sequence` needs besides inputs and state: `(kernel, bias, peepholes)` and the settings."""
        weights = (tf.convert_to_tensor(self._kernel), tf.convert_to_tensor(self._bias), self._peepholes())
        return weights, dict(forget_bias=self._forget_bias, cell_clip=self._cell_clip)

    def unroll(self, inputs, initial_state, sequence_length=None, time_major=False, resets=None, reset_state=None):
        """Runs the cell over a whole chunk: `(outputs, final_state)`, like `dynamic_rnn`.

        Args:
          inputs: `[batch, time, depth]`, or `[time, batch, depth]` with `time_major=True`.
          initial_state: `LSTMStateTuple(c, h)`, each `[batch, num_units]`.
          sequence_length: optional `[batch]` ints; rows stop at their length: their outputs past it
            are zeros and their final state is the state at their last valid step.
          time_major: layout of `inputs` and of the returned outputs.
          resets: optional bool mask laid out like the inputs' first two axes; a marked row starts
            that step from `reset_state` (see `tfstate.resets`).
          reset_state: `LSTMStateTuple(c, h)` a reset starts from; zeros by default.
        """
        inputs = tf.convert_to_tensor(inputs)
        if inputs.shape.rank != 3:
            raise ValueError(f"{type(self).__name__}.unroll needs 3-D inputs; got shape {inputs.shape}.")
        require_graph_mode(f"{type(self).__name__}.unroll")
        check_state(self.state_size, initial_state, f"The initial state given to {type(self).__name__}.unroll")
        who = f"{type(self).__name__}.unroll"
        lengths = sequence.sequence_lengths(sequence_length, inputs, time_major, who)
        if resets is not None:
            resets = time_major_resets(resets, inputs, time_major, who)
            if reset_state is None:
                reset_state = self.zero_state(tf.shape(inputs)[1 if time_major else 0], initial_state[0].dtype)
            check_state(self.state_size, reset_state, f"The reset_state given to {who}")
        implementation = self.implementation_for(inputs, time_major, resets is not None)
        self.ensure_built(inputs)
        return self._unroll(implementation, inputs, initial_state, lengths, time_major, resets, reset_state)

    def implementation_for(self, inputs, time_major, resets=False):
        """The path `unroll` takes for these inputs (with `resets` or not): the one given, or the one "auto" picks."""
        if self._implementation != "auto":
            if resets and self._implementation == "block":
                raise ValueError(
                    f"{type(self).__name__}(implementation='block') cannot reset rows inside a chunk "
                    "(TensorFlow's BlockLSTM kernel has no reset mask); use implementation='native', "
                    "'xla', 'loop' or 'auto' with resets."
                )
            return self._implementation
        if not tf.config.list_physical_devices("GPU") and native.auto_reason(inputs.dtype) is None:
            return "native"
        steps = inputs.shape[0 if time_major else 1]
        if steps is not None and steps <= sequence.MAX_STATIC_STEPS:
            return "xla"
        return "block" if inputs.dtype in (tf.float32, tf.float16) and not resets else "loop"

    def _unroll(self, implementation, inputs, initial_state, lengths, time_major, resets, reset_state):
        c0, h0 = initial_state
        with_resets = {} if resets is None else dict(resets=resets, reset_state=tuple(reset_state))
        with tf.name_scope(type(self).__name__ + "Unroll"):
            kernel = tf.convert_to_tensor(self._kernel)
            bias = tf.convert_to_tensor(self._bias)
            peepholes = self._peepholes()
            settings = dict(time_major=time_major, forget_bias=self._forget_bias, cell_clip=self._cell_clip)
            if implementation == "native":
                forward = functools.partial(native.lstm_sequence, **settings)
            elif implementation == "block":
                forward = functools.partial(self._block, time_major=time_major)
            else:
                forward = functools.partial(sequence.sequence, **settings)

            if implementation == "loop":  # plain TF ops: TensorFlow's own autodiff
                outputs, _, c, h = forward(inputs, c0, h0, kernel, bias, peepholes, lengths, **with_resets)
            else:
                if implementation == "xla":
                    forward = tf.function(forward, jit_compile=True, autograph=False)
                # explicit gradient; for "block" also because TF's BlockLSTMGrad ignores cell_clip
                outputs, c, h = sequence.with_gradient(
                    forward,
                    inputs,
                    c0,
                    h0,
                    kernel,
                    bias,
                    peepholes,
                    lengths,
                    **settings,
                    **with_resets,
                    native_loop=implementation == "native",
                )
        return outputs, LSTMStateTuple(c, h)

    def _block(self, inputs, c0, h0, kernel, bias, peepholes, lengths, time_major):
        """TensorFlow's BlockLSTM kernel over the chunk: (outputs, cell states, c, h) like `sequence.sequence`.

        Past a row's length its outputs are zeros; its cell states there are not meaningful.
        """
        if not time_major:
            inputs = tf.transpose(inputs, [1, 0, 2])
        steps = tf.shape(inputs)[0]
        wci, wcf, wco, cell_clip = native.kernel_arguments(peepholes, self._cell_clip, self._num_units, inputs.dtype)
        max_len = tf.cast(steps if lengths is None else tf.reduce_max(lengths), tf.int64)
        _, cs, _, _, _, _, hs = tf.raw_ops.BlockLSTM(
            seq_len_max=max_len,
            x=inputs,
            cs_prev=c0,
            h_prev=h0,
            w=kernel,
            wci=wci,
            wcf=wcf,
            wco=wco,
            b=bias,
            forget_bias=self._forget_bias,
            cell_clip=cell_clip,
            use_peephole=self._use_peephole,
        )
        if lengths is None:  # the last step's state; the initial one for a chunk of no steps
            c, h = tf.concat([c0[None], cs], 0)[-1], tf.concat([h0[None], hs], 0)[-1]
        else:
            hs = hs * sequence.valid_steps(lengths, steps, inputs.dtype)
            # index 0 is the initial state, so a row of length 0 keeps it
            rows = tf.range(tf.shape(lengths)[0])
            indices = tf.stack([lengths, rows], axis=1)
            c = tf.gather_nd(tf.concat([c0[None], cs], 0), indices)
            h = tf.gather_nd(tf.concat([h0[None], hs], 0), indices)
        if not time_major:
            hs, cs = tf.transpose(hs, [1, 0, 2]), tf.transpose(cs, [1, 0, 2])
        return hs, cs, c, h


class LSTMBlockCell(FusedLSTM):
    """TF1 contrib's `LSTMBlockCell`: an LSTM step in one kernel, variables under `lstm_cell/`.

    Weights are interchangeable with `tfstate.LSTMCell` (same scope, same names, same layout).
    `cell_clip=None`, zero or negative means no clipping (as in TF1 contrib). See the module docstring for `unroll`.
    """

    _default_name = "lstm_cell"

    def __init__(
        self,
        num_units,
        forget_bias=1.0,
        cell_clip=None,
        use_peephole=False,
        dtype=None,
        reuse=None,
        name="lstm_cell",
        implementation="auto",
    ):
        super().__init__(
            num_units,
            forget_bias=forget_bias,
            cell_clip=cell_clip,
            use_peephole=use_peephole,
            reuse=reuse,
            name=name,
            dtype=dtype,
            implementation=implementation,
        )


class LSTMBlockFusedCell(FusedLSTM):
    """TF1 contrib's `LSTMBlockFusedCell`: the whole sequence in one fused computation.

    As in TF1, `cell(inputs, initial_state=None, dtype=None, sequence_length=None)` with
    time-major `[time, batch, depth]` inputs returns `(outputs, final_state)`. Called with 2-D
    inputs and a state, it runs one step like any cell (what `tfstate.generate` does).
    Variables live under `lstm_fused_cell/` by default, as in TF1.
    """

    _default_name = "lstm_fused_cell"

    def __init__(
        self,
        num_units,
        forget_bias=1.0,
        cell_clip=None,
        use_peephole=False,
        reuse=None,
        dtype=None,
        name="lstm_fused_cell",
        implementation="auto",
    ):
        super().__init__(
            num_units,
            forget_bias=forget_bias,
            cell_clip=cell_clip,
            use_peephole=use_peephole,
            reuse=reuse,
            name=name,
            dtype=dtype,
            implementation=implementation,
        )

    def __call__(self, inputs, initial_state=None, dtype=None, sequence_length=None, scope=None):
        inputs = tf.convert_to_tensor(inputs)
        if inputs.shape.rank != 3:
            if initial_state is None:
                raise ValueError(
                    f"LSTMBlockFusedCell called on one step (inputs of shape {inputs.shape}) needs "
                    "the state to step from: cell(x_t, state). Pass 3-D time-major inputs "
                    "[time, batch, depth] to run a whole sequence from initial_state or zeros."
                )
            return super().__call__(inputs, initial_state, scope=scope)
        self.ensure_built(inputs, scope)
        if initial_state is None:
            if dtype is None:
                raise ValueError("LSTMBlockFusedCell needs initial_state or dtype (as in TF1).")
            zeros = tf.zeros(tf.stack([tf.shape(inputs)[1], self._num_units]), dtype=dtype)
            initial_state = LSTMStateTuple(zeros, zeros)
        return self.unroll(inputs, initial_state, sequence_length=sequence_length, time_major=True)
