"""TF1 contrib's attention: Bahdanau and Luong mechanisms, and `AttentionWrapper`, a cell that attends.

One `AttentionWrapper` step, TF1's equations (one mechanism; several are concatenated):

    cell_output, cell_state = cell(cell_input_fn(inputs, previous attention), cell_state)
    alignments = softmax(score(cell_output, keys))          # masked past memory_sequence_length
    context    = alignments @ values                        # values: the (masked) memory
    attention  = [cell_output, context] @ attention_layer   # or just context, without attention_layer_size
    output     = attention if output_attention else cell_output

    Bahdanau:  keys = memory @ memory_layer;  score = v . tanh(keys + query @ query_layer)
               normalize=True: v -> g * v / |v|, and a bias b inside the tanh
    Luong:     keys = memory @ memory_layer;  score = query . keys        (scale=True: g * score)

Variables, as TF1 named them: `memory_layer/kernel` where the mechanism is built; then, where the
wrapper is first called (e.g. `decoder/attention_wrapper/`): the cell's own, `bahdanau_attention/query_layer/kernel`,
`bahdanau_attention/attention_v` (normalized: `attention_g`, `attention_b`), `luong_attention/attention_g`
(scaled), and `attention_layer/kernel`.
"""

import collections
import math

import numpy as np
import tensorflow as tf

from tfstate._checks import check_state, check_structure, describe
from tfstate.cells import RNNCell
from tfstate.layers import Dense


def _static_or_dynamic(tensor, axis):
    return tf.compat.dimension_value(tensor.shape[axis]) or tf.shape(tensor)[axis]


def _check_same_batch(given, expected, what, fix):
    """Raises ValueError when both batch sizes are static and differ; otherwise a list of (maybe no) runtime asserts."""
    given_static, expected_static = tf.get_static_value(given), tf.get_static_value(expected)
    if given_static is not None and expected_static is not None:
        if given_static != expected_static:
            raise ValueError(f"{what} has {given_static} rows but the memory has {expected_static}. {fix}")
        return []
    return [
        tf.debugging.assert_equal(
            given,
            expected,
            message=f"{what} and the memory must have the same number of rows (given, memory's below). {fix}",
        )
    ]


def _prepare_memory(memory, memory_sequence_length, check_inner_dims_defined):
    """The memory as tensors, with the rows past each sequence's length set to zero."""
    memory = tf.nest.map_structure(lambda m: tf.convert_to_tensor(m, name="memory"), memory)
    first = tf.nest.flatten(memory)[0]
    if check_inner_dims_defined:
        for part in tf.nest.flatten(memory):
            if part.shape.rank is None or not part.shape[2:].is_fully_defined():
                raise ValueError(
                    "An attention mechanism needs memory of shape [batch, max_time, depth] with the "
                    f"depth known; got shape {part.shape}."
                )
    if memory_sequence_length is None:
        return memory
    lengths = tf.convert_to_tensor(memory_sequence_length, name="memory_sequence_length")
    if lengths.shape.rank != 1:
        raise ValueError(f"memory_sequence_length must have shape [batch]; got shape {lengths.shape}.")
    if lengths.shape[0] is not None and first.shape[0] is not None and lengths.shape[0] != first.shape[0]:
        raise ValueError(
            f"memory_sequence_length has {lengths.shape[0]} rows, the memory {first.shape[0]} "
            f"(shape {first.shape}); give one length per memory row."
        )
    mask = tf.sequence_mask(lengths, maxlen=tf.shape(first)[1], dtype=first.dtype)

    def apply(part):
        extra = tf.ones([tf.rank(part) - 2], tf.int32)
        return part * tf.reshape(mask, tf.concat([tf.shape(mask), extra], 0))

    return tf.nest.map_structure(apply, memory)


def _mask_score(score, memory_sequence_length, score_mask_value):
    """`score_mask_value` (-inf by default) past each row's memory length."""
    if memory_sequence_length is None:
        return score
    with tf.control_dependencies(
        [
            tf.debugging.assert_positive(
                memory_sequence_length, message="Every memory_sequence_length must be greater than zero."
            )
        ]
    ):
        mask = tf.sequence_mask(memory_sequence_length, maxlen=tf.shape(score)[1])
    return tf.where(mask, score, score_mask_value * tf.ones_like(score))


class AttentionMechanism:
    """Base of the attention mechanisms (TF1's marker class): `alignments_size` and `state_size`."""

    @property
    def alignments_size(self):
        raise NotImplementedError

    @property
    def state_size(self):
        raise NotImplementedError


class _BaseAttentionMechanism(AttentionMechanism):
    """Keeps the memory as `values` (masked) and `keys` (`memory_layer(values)`); scores come from subclasses.

    `probability_fn(score, previous_alignments)` turns a masked score into alignments.
    """

    def __init__(
        self,
        query_layer,
        memory,
        probability_fn,
        memory_sequence_length=None,
        memory_layer=None,
        check_inner_dims_defined=True,
        score_mask_value=None,
        custom_key_value_fn=None,
        name=None,
    ):
        for role, layer in (("query_layer", query_layer), ("memory_layer", memory_layer)):
            if layer is not None and not callable(layer):
                raise TypeError(
                    f"{type(self).__name__} needs a layer such as tfstate.layers.Dense as '{role}'; "
                    f"got {type(layer).__name__}."
                )
        if not callable(probability_fn):
            raise TypeError(f"probability_fn must be callable; got {type(probability_fn).__name__}.")
        self._query_layer = query_layer
        self._memory_layer = memory_layer
        with tf.name_scope(name or "BaseAttentionMechanismInit"):
            self._values = _prepare_memory(memory, memory_sequence_length, check_inner_dims_defined)
            self.dtype = memory_layer.dtype if memory_layer is not None else tf.nest.flatten(self._values)[0].dtype
            if score_mask_value is None:
                score_mask_value = tf.as_dtype(self.dtype).as_numpy_dtype(-np.inf)
            self._probability_fn = lambda score, previous: probability_fn(
                _mask_score(score, memory_sequence_length, score_mask_value), previous
            )
            self._keys = self._memory_layer(self._values) if self._memory_layer is not None else self._values
            if custom_key_value_fn is not None:
                self._keys, self._values = custom_key_value_fn(self._keys, self._values)
            self._batch_size = _static_or_dynamic(self._keys, 0)
            self._alignments_size = _static_or_dynamic(self._keys, 1)

    @property
    def memory_layer(self):
        return self._memory_layer

    @property
    def query_layer(self):
        return self._query_layer

    @property
    def values(self):
        return self._values

    @property
    def keys(self):
        return self._keys

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def alignments_size(self):
        return self._alignments_size

    @property
    def state_size(self):
        return self._alignments_size

    def initial_alignments(self, batch_size, dtype):
        """Zeros `[batch_size, max_time]`: the alignments before the first step."""
        return tf.zeros([batch_size, self._alignments_size], dtype)

    def initial_state(self, batch_size, dtype):
        """The mechanism's state before the first step (its alignments)."""
        return self.initial_alignments(batch_size, dtype)


def _softmax_by_default(probability_fn):
    """TF1's wrapping: a user's `probability_fn(score)` (softmax by default) ignores the previous alignments."""
    probability_fn = probability_fn or tf.nn.softmax
    return lambda score, _: probability_fn(score)


def _luong_score(query, keys, scale):
    """`query . keys` along the depth (times the scalar `scale` when given): `[batch, max_time]`."""
    depth, key_depth = query.shape[-1], keys.shape[-1]
    if depth != key_depth:
        raise ValueError(
            f"LuongAttention compares the query with the keys, so their depths must match; the query "
            f"has depth {depth}, the keys {key_depth}. Set num_units to the query's depth ({depth}), "
            "which is the output size of the wrapped cell."
        )
    score = tf.squeeze(tf.matmul(tf.expand_dims(query, 1), keys, transpose_b=True), [1])
    return score if scale is None else scale * score


def _luong_scale(query, scale):
    """The scalar `attention_g` (initialised to 1) of a scaled Luong score, or None."""
    if not scale:
        return None
    return tf.compat.v1.get_variable(
        "attention_g", shape=(), dtype=query.dtype, initializer=tf.compat.v1.ones_initializer()
    )


def _bahdanau_score(processed_query, keys, num_units, normalize):
    """`v . tanh(keys + processed_query)` with TF1's variables `attention_v` (and `attention_g`, `attention_b`)."""
    dtype = processed_query.dtype
    attention_v = tf.compat.v1.get_variable("attention_v", [num_units], dtype=dtype)
    processed_query = tf.expand_dims(processed_query, 1)
    if not normalize:
        return tf.reduce_sum(attention_v * tf.tanh(keys + processed_query), [2])
    attention_g = tf.compat.v1.get_variable(
        "attention_g", shape=(), dtype=dtype, initializer=tf.compat.v1.constant_initializer(math.sqrt(1.0 / num_units))
    )
    attention_b = tf.compat.v1.get_variable(
        "attention_b", [num_units], dtype=dtype, initializer=tf.compat.v1.zeros_initializer()
    )
    normed_v = attention_g * attention_v * tf.math.rsqrt(tf.reduce_sum(tf.square(attention_v)))
    return tf.reduce_sum(normed_v * tf.tanh(keys + processed_query + attention_b), [2])


class LuongAttention(_BaseAttentionMechanism):
    """Luong's multiplicative attention (Luong et al. 2015): `score = query . (memory @ memory_layer)`.

    `num_units` must equal the query's depth (the wrapped cell's output size); `scale=True` multiplies
    the score by a learned scalar `attention_g`. `probability_fn` (softmax by default, or e.g. `hardmax`)
    maps the masked score to alignments.
    """

    def __init__(
        self,
        num_units,
        memory,
        memory_sequence_length=None,
        scale=False,
        probability_fn=None,
        score_mask_value=None,
        dtype=None,
        custom_key_value_fn=None,
        name="LuongAttention",
    ):
        dtype = dtype or tf.float32
        super().__init__(
            query_layer=None,
            memory_layer=Dense(num_units, name="memory_layer", use_bias=False, dtype=dtype),
            memory=memory,
            probability_fn=_softmax_by_default(probability_fn),
            memory_sequence_length=memory_sequence_length,
            score_mask_value=score_mask_value,
            custom_key_value_fn=custom_key_value_fn,
            name=name,
        )
        self._num_units = num_units
        self._scale = scale
        self._name = name

    def __call__(self, query, state):
        """Returns `(alignments, next_state)`, both `[batch, max_time]`, for a `[batch, depth]` query."""
        with tf.compat.v1.variable_scope(None, "luong_attention", [query]):
            score = _luong_score(query, self._keys, _luong_scale(query, self._scale))
        alignments = self._probability_fn(score, state)
        return alignments, alignments


class BahdanauAttention(_BaseAttentionMechanism):
    """Bahdanau's additive attention (Bahdanau et al. 2015): `score = v . tanh(keys + query @ query_layer)`.

    `normalize=True` is the weight-normalized form (`v -> g v / |v|` and a bias inside the tanh).
    `probability_fn` (softmax by default) maps the masked score to alignments.
    """

    def __init__(
        self,
        num_units,
        memory,
        memory_sequence_length=None,
        normalize=False,
        probability_fn=None,
        score_mask_value=None,
        dtype=None,
        custom_key_value_fn=None,
        name="BahdanauAttention",
    ):
        dtype = dtype or tf.float32
        super().__init__(
            query_layer=Dense(num_units, name="query_layer", use_bias=False, dtype=dtype),
            memory_layer=Dense(num_units, name="memory_layer", use_bias=False, dtype=dtype),
            memory=memory,
            probability_fn=_softmax_by_default(probability_fn),
            memory_sequence_length=memory_sequence_length,
            score_mask_value=score_mask_value,
            custom_key_value_fn=custom_key_value_fn,
            name=name,
        )
        self._num_units = num_units
        self._normalize = normalize
        self._name = name

    def __call__(self, query, state):
        """Returns `(alignments, next_state)`, both `[batch, max_time]`, for a `[batch, depth]` query."""
        with tf.compat.v1.variable_scope(None, "bahdanau_attention", [query]):
            score = _bahdanau_score(self.query_layer(query), self._keys, self._num_units, self._normalize)
        alignments = self._probability_fn(score, state)
        return alignments, alignments


class AttentionWrapperState(
    collections.namedtuple(
        "AttentionWrapperState",
        ("cell_state", "attention", "time", "alignments", "alignment_history", "attention_state"),
    )
):
    """An `AttentionWrapper`'s state: the wrapped cell's state, the last attention, the step counter,
    the last alignments, the alignment history (TensorArrays, or `()` when not kept) and the mechanisms' states."""

    def clone(self, **kwargs):
        """A copy with the given fields replaced; each replacement must have the shape of what it replaces.

        state = wrapper.zero_state(batch_size, tf.float32).clone(cell_state=encoder_final_state)
        """
        replaced = self._replace(**kwargs)
        for field in kwargs:
            old, new = getattr(self, field), getattr(replaced, field)
            what = f"AttentionWrapperState.clone: '{field}'"
            check_structure(old, new, what)
            for old_part, new_part in zip(tf.nest.flatten(old), tf.nest.flatten(new)):
                if isinstance(old_part, tf.Tensor) and not old_part.shape.is_compatible_with(
                    getattr(new_part, "shape", None)
                ):
                    raise ValueError(
                        f"{what} must have the shapes of the state it replaces, {describe(old)}; got "
                        f"{describe(new)}. With a BeamSearchDecoder, tile it with "
                        "tile_batch(state, multiplier=beam_width)."
                    )
        return replaced._replace(
            **{
                field: tf.nest.map_structure(
                    lambda old, new: tf.ensure_shape(new, old.shape) if isinstance(old, tf.Tensor) else new,
                    getattr(self, field),
                    getattr(replaced, field),
                )
                for field in kwargs
            }
        )


def hardmax(logits, name=None):
    """One-hot vectors at the argmax of the last axis (a `probability_fn` for hard attention)."""
    with tf.name_scope(name or "Hardmax"):
        logits = tf.convert_to_tensor(logits, name="logits")
        depth = tf.compat.dimension_value(logits.shape[-1]) or tf.shape(logits)[-1]
        return tf.one_hot(tf.argmax(logits, -1), depth, dtype=logits.dtype)


def _compute_attention(attention_mechanism, cell_output, attention_state, attention_layer):
    """TF1's attention step: `(attention, alignments, next_attention_state)` for one mechanism."""
    alignments, next_attention_state = attention_mechanism(cell_output, state=attention_state)
    context = tf.squeeze(tf.matmul(tf.expand_dims(alignments, 1), attention_mechanism.values), [1])
    attention = attention_layer(tf.concat([cell_output, context], 1)) if attention_layer is not None else context
    return attention, alignments, next_attention_state


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


class AttentionWrapper(RNNCell):
    """A cell that attends over a memory after every step (TF1's `tf.contrib.seq2seq.AttentionWrapper`).

    Its state is an `AttentionWrapperState`. It works wherever a cell does: `dynamic_decode` with a
    `BasicDecoder` or `BeamSearchDecoder`, `tfstate.dynamic_rnn` / `tf.compat.v1.nn.dynamic_rnn`, and
    `zero_state` / `__call__` in your own `tf.while_loop`. For beam search, build the mechanism on
    `tile_batch(memory, beam_width)` and call `zero_state(batch_size * beam_width, dtype)`.

    Args:
      cell: the RNN cell to wrap (any tfstate cell, fused or not, or a `MultiRNNCell`).
      attention_mechanism: a mechanism (`BahdanauAttention`, `LuongAttention`, ...) or a list of them.
      attention_layer_size: int (or one per mechanism): the attention is `[cell_output, context] @ W`
        of this depth (`attention_layer/kernel`, no bias); None: the attention is the context itself.
      alignment_history: keep every step's alignments in the state (TensorArrays; `.stack()` them).
      cell_input_fn: `f(inputs, attention)` -> cell input; default `concat([inputs, attention], -1)`.
      output_attention: output the attention (Luong style, default) or the cell's output (Bahdanau style).
      initial_cell_state: the cell state `zero_state` starts from (default: the cell's zero state).
      name: the variable scope's name, `attention_wrapper` by default.
      attention_layer: layer(s) to use instead of `attention_layer_size`.
      attention_fn: replaces TF1's `_compute_attention(mechanism, cell_output, attention_state, attention_layer)`.
    """

    def __init__(
        self,
        cell,
        attention_mechanism,
        attention_layer_size=None,
        alignment_history=False,
        cell_input_fn=None,
        output_attention=True,
        initial_cell_state=None,
        name=None,
        attention_layer=None,
        attention_fn=None,
    ):
        super().__init__(name=name)
        if not (callable(cell) and hasattr(cell, "state_size") and hasattr(cell, "output_size")):
            raise TypeError(f"AttentionWrapper wraps an RNN cell; got {type(cell).__name__}.")
        self._is_multi = isinstance(attention_mechanism, (list, tuple))
        mechanisms = _as_tuple(attention_mechanism)
        for mechanism in mechanisms:
            if not isinstance(mechanism, AttentionMechanism):
                raise TypeError(
                    "AttentionWrapper needs attention mechanisms (BahdanauAttention, LuongAttention, ...) "
                    f"as 'attention_mechanism'; got {type(mechanism).__name__}."
                )
        if cell_input_fn is not None and not callable(cell_input_fn):
            raise TypeError(f"cell_input_fn must be callable; got {type(cell_input_fn).__name__}.")
        if attention_layer_size is not None and attention_layer is not None:
            raise ValueError("AttentionWrapper takes attention_layer_size or attention_layer, not both.")
        if attention_layer_size is not None:
            sizes = _as_tuple(attention_layer_size)
            self._check_one_per_mechanism(sizes, mechanisms, "attention_layer_size")
            self._attention_layers = tuple(
                Dense(size, name="attention_layer", use_bias=False, dtype=mechanism.dtype)
                for size, mechanism in zip(sizes, mechanisms)
            )
            self._attention_layer_size = sum(sizes)
        elif attention_layer is not None:
            self._attention_layers = _as_tuple(attention_layer)
            self._check_one_per_mechanism(self._attention_layers, mechanisms, "attention_layer")
            self._attention_layer_size = sum(
                tf.compat.dimension_value(
                    layer.compute_output_shape([None, cell.output_size + mechanism.values.shape[-1]])[-1]
                )
                for layer, mechanism in zip(self._attention_layers, mechanisms)
            )
        else:
            self._attention_layers = None
            self._attention_layer_size = sum(tf.compat.dimension_value(m.values.shape[-1]) for m in mechanisms)
        self._cell = cell
        self._attention_mechanisms = mechanisms
        self._cell_input_fn = cell_input_fn or (lambda inputs, attention: tf.concat([inputs, attention], -1))
        self._attention_fn = attention_fn or _compute_attention
        self._output_attention = output_attention
        self._alignment_history = alignment_history
        self._initial_cell_state = None
        if initial_cell_state is not None:
            batch = _static_or_dynamic(tf.nest.flatten(initial_cell_state)[-1], 0)
            with tf.control_dependencies(self._batch_checks(batch, "initial_cell_state")):
                self._initial_cell_state = tf.nest.map_structure(tf.identity, initial_cell_state)

    @staticmethod
    def _check_one_per_mechanism(items, mechanisms, what):
        if len(items) != len(mechanisms):
            raise ValueError(
                f"AttentionWrapper needs one {what} per attention mechanism: {len(mechanisms)} "
                f"mechanism(s), {len(items)} {what}(s)."
            )

    def _batch_checks(self, batch_size, what):
        """Static errors, or runtime asserts, unless `batch_size` equals every mechanism's memory batch."""
        fix = (
            "With a BeamSearchDecoder, tile the memory and the encoder state with tile_batch(x, "
            "multiplier=beam_width) and call zero_state(batch_size * beam_width, dtype)."
        )
        return [
            check
            for mechanism in self._attention_mechanisms
            for check in _check_same_batch(batch_size, mechanism.batch_size, f"AttentionWrapper: {what}", fix)
        ]

    def _item_or_tuple(self, items):
        items = tuple(items)
        return items if self._is_multi else items[0]

    @property
    def output_size(self):
        return self._attention_layer_size if self._output_attention else self._cell.output_size

    @property
    def state_size(self):
        """An `AttentionWrapperState` of sizes (`alignment_history` is `()` when not kept)."""
        mechanisms = self._attention_mechanisms
        return AttentionWrapperState(
            cell_state=self._cell.state_size,
            attention=self._attention_layer_size,
            time=tf.TensorShape([]),
            alignments=self._item_or_tuple(m.alignments_size for m in mechanisms),
            alignment_history=self._item_or_tuple(
                m.alignments_size if self._alignment_history else () for m in mechanisms
            ),
            attention_state=self._item_or_tuple(m.state_size for m in mechanisms),
        )

    def zero_state(self, batch_size, dtype):
        """The state before the first step: the cell's zero (or `initial_cell_state`), zero attention and alignments.

        `batch_size` must equal the memory's batch (checked); with beam search, that is `batch * beam_width`.
        """
        with tf.name_scope("AttentionWrapperZeroState"):
            cell_state = self._initial_cell_state
            if cell_state is None:
                cell_state = self._cell.zero_state(batch_size, dtype)
            with tf.control_dependencies(self._batch_checks(batch_size, "zero_state(batch_size=...)")):
                cell_state = tf.nest.map_structure(tf.identity, cell_state)
            alignments = [m.initial_alignments(batch_size, dtype) for m in self._attention_mechanisms]
            return AttentionWrapperState(
                cell_state=cell_state,
                attention=tf.zeros([batch_size, self._attention_layer_size], dtype),
                time=tf.zeros([], tf.int32),
                alignments=self._item_or_tuple(alignments),
                alignment_history=self._item_or_tuple(
                    tf.TensorArray(dtype, size=0, dynamic_size=True, element_shape=a.shape)
                    if self._alignment_history
                    else ()
                    for a in alignments
                ),
                attention_state=self._item_or_tuple(
                    m.initial_state(batch_size, dtype) for m in self._attention_mechanisms
                ),
            )

    def _check_state(self, state):
        if not isinstance(state, AttentionWrapperState):
            raise TypeError(
                "AttentionWrapper needs an AttentionWrapperState as its state (from zero_state, then "
                f".clone(cell_state=...)); got {type(state).__name__}."
            )
        check_state(self._cell.state_size, state.cell_state, "The cell_state given to AttentionWrapper")

    def call(self, inputs, state):
        """One step: returns `(attention or cell output, next AttentionWrapperState)`."""
        cell_output, next_cell_state = self._cell(self._cell_input_fn(inputs, state.attention), state.cell_state)
        with tf.control_dependencies(self._batch_checks(_static_or_dynamic(cell_output, 0), "the cell's output")):
            cell_output = tf.identity(cell_output, name="checked_cell_output")
        attention_states = _as_tuple(state.attention_state) if self._is_multi else (state.attention_state,)
        histories = _as_tuple(state.alignment_history) if self._is_multi else (state.alignment_history,)
        attentions, all_alignments, next_attention_states, next_histories = [], [], [], []
        for index, mechanism in enumerate(self._attention_mechanisms):
            layer = self._attention_layers[index] if self._attention_layers else None
            attention, alignments, next_attention_state = self._attention_fn(
                mechanism, cell_output, attention_states[index], layer
            )
            attentions.append(attention)
            all_alignments.append(alignments)
            next_attention_states.append(next_attention_state)
            next_histories.append(histories[index].write(state.time, alignments) if self._alignment_history else ())
        attention = tf.concat(attentions, 1)
        next_state = AttentionWrapperState(
            cell_state=next_cell_state,
            attention=attention,
            time=state.time + 1,
            alignments=self._item_or_tuple(all_alignments),
            alignment_history=self._item_or_tuple(next_histories),
            attention_state=self._item_or_tuple(next_attention_states),
        )
        return (attention if self._output_attention else cell_output), next_state
