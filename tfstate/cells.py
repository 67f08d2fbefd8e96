"""TF1-compatible RNN cells: the maths and variable names of `tf.compat.v1.nn.rnn_cell`.

Every cell follows TF1's protocol, so `tf.compat.v1.nn.dynamic_rnn`, `static_rnn`,
`bidirectional_dynamic_rnn` and `raw_rnn` accept it:

    cell.state_size, cell.output_size       ints, TensorShapes or nests of them
    cell.zero_state(batch_size, dtype)      nest of zeros shaped like state_size
    output, new_state = cell(inputs, state) one step; variables made on the first call

As in TF1 (1.2+), a cell object owns its variables: the first call captures the variable
scope (`rnn/lstm_cell`, `rnn/multi_rnn_cell/cell_0/lstm_cell`, ...) and creates the weights
there; every later call, from any scope, reuses the same weights.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import hashlib
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from tfstate._checks import check_state, require_graph_mode
from tfstate._types import Activation, DTypeLike, Initializer, Scope, StateNest, StateSize, TensorNest


class LSTMStateTuple(collections.namedtuple("LSTMStateTuple", ("c", "h"))):
    """An LSTM's state: the cell state `c` and the hidden state `h` (TF1's `m`), in that order."""

    __slots__ = ()

    @property
    def dtype(self) -> tf.DType:
        c, h = self
        if c.dtype != h.dtype:
            raise TypeError(f"LSTMStateTuple has c of dtype {c.dtype} but h of dtype {h.dtype}.")
        return c.dtype


def resolve_activation(
    activation: Activation | None, default: Callable[[tf.Tensor], tf.Tensor] = tf.tanh
) -> Callable[[tf.Tensor], tf.Tensor]:
    """Resolves an activation given as a callable, a name such as "relu", or None (the default)."""
    if activation is None:
        return default
    if callable(activation):
        return activation
    found = getattr(tf.math, activation, None) or getattr(tf.nn, activation, None)
    if not callable(found):
        raise ValueError(f"Unknown activation {activation!r}: pass a callable or a name in tf.math or tf.nn.")
    return found


def _snake_case(class_name):
    """`MyLSTMCell` -> `my_lstm_cell`: TF1's default layer name for a class."""
    words = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", words).lower().lstrip("_") or "rnn_cell"


def _state_width(state_size_entry):
    return tf.TensorShape(state_size_entry).as_list()


class RNNCell:
    """Base of all tfstate cells: TF1's `RNNCell` protocol with TF1's variable scoping.

    Variables live under the class name in snake case (`lstm_cell`, `gru_cell`, ...) unless `name` is
    given. Every cell implements `state_size`, `output_size` and TF1's `call(inputs, state)`;
    tfstate's cells make their weights in `_build(input_depth, dtype)` (with `_add_variable`), the
    dtype being that of the (last) input; a cell whose step input is not `[batch, depth]` (a
    `(time, x)` pair, an image) says how deep it is by overriding `_input_depth(inputs)`.
    A TF1-style subclass works as it did in TF1: besides `call`, it may define `build(inputs_shape)`
    (with `add_variable` / `add_weight`) or call `tf.compat.v1.get_variable` inside `call`; either
    way its variables live in the scope captured on the first call.
    """

    _default_name = None  # None: the class name in snake case, as TF1 layers name themselves

    def __init__(self, reuse: bool | None = None, name: str | None = None, dtype: DTypeLike | None = None) -> None:
        self._reuse = reuse
        self._name = name
        self._dtype = tf.as_dtype(dtype) if dtype is not None else None
        self._scope = None
        self._variables = []

    @property
    def state_size(self) -> StateSize:
        raise NotImplementedError(f"{type(self).__name__} must define state_size.")

    @property
    def output_size(self) -> StateSize:
        raise NotImplementedError(f"{type(self).__name__} must define output_size.")

    @property
    def built(self) -> bool:
        """True once the first call has created the cell's variables."""
        return self._scope is not None

    @built.setter
    def built(self, value: bool) -> None:
        """Accepts TF1's `self.built = True` at the end of `build`; the first call decides."""

    @property
    def variables(self) -> list[tf.Variable]:
        """The cell's variables, in creation order (empty before the first call)."""
        return list(self._variables)

    trainable_variables = variables
    weights = variables
    trainable_weights = variables

    @property
    def dtype(self) -> tf.DType | None:
        return self._dtype

    def zero_state(self, batch_size: int | tf.Tensor, dtype: DTypeLike) -> StateNest:
        """Zeros shaped `[batch_size, s]` for every `s` in `state_size`, nested like it."""
        with tf.name_scope(type(self).__name__ + "ZeroState"):
            return tf.nest.map_structure(
                lambda size: tf.zeros([batch_size] + _state_width(size), dtype=dtype), self.state_size
            )

    def get_initial_state(
        self,
        inputs: tf.Tensor | None = None,
        batch_size: int | tf.Tensor | None = None,
        dtype: DTypeLike | None = None,
    ) -> StateNest:
        """Keras-style alias of `zero_state`, taking batch size and dtype from `inputs` if given."""
        if inputs is not None:
            batch_size = tf.shape(inputs)[0]
            dtype = dtype or inputs.dtype
        return self.zero_state(batch_size, dtype)

    def __call__(
        self, inputs: TensorNest, state: StateNest, scope: Scope | None = None
    ) -> tuple[TensorNest, StateNest]:
        """Runs one step: returns `(output, new_state)`; the first call creates the variables."""
        require_graph_mode(type(self).__name__)
        if not tf.nest.is_nested(inputs):
            inputs = tf.convert_to_tensor(inputs)
        self._check_state(state)
        with self._first_use(scope) as first:
            if first:
                self._create_variables(inputs)
            return self.call(inputs, state)

    @contextlib.contextmanager
    def _first_use(self, scope=None):
        """Build once: yields True inside the scope captured by the cell's first use, False inside it later.

        The first use (a call, or a fused cell's `unroll`) captures its variable scope, as TF1
        layers do (`scope`, or the uniquified default name), and creates the weights there; every
        later use re-enters that scope with reuse, whatever scope it is made from. A first use that
        raises leaves the cell unbuilt.
        """
        if self._scope is None:
            with self._first_scope(scope) as captured:
                self._scope = captured
                try:
                    yield True
                except BaseException:  # a first use that failed leaves the cell unbuilt
                    self._scope, self._variables = None, []
                    raise
        else:
            with tf.compat.v1.variable_scope(self._scope, reuse=True):
                yield False

    def _check_state(self, state):
        """Raises ValueError unless `state` fits `state_size` (overridden where a state holds more than tensors)."""
        check_state(self.state_size, state, f"The state given to {type(self).__name__}")

    def call(self, inputs: TensorNest, state: StateNest) -> tuple[TensorNest, StateNest]:
        """One step: returns `(output, new_state)` (every cell defines it, as in TF1)."""
        raise NotImplementedError(
            f"{type(self).__name__} must define call(inputs, state) returning (output, new_state), as in TF1."
        )

    def _build(self, input_depth, dtype):
        """Creates a tfstate cell's weights; cells whose parts own the weights leave it as it is."""

    def _create_variables(self, inputs):
        if hasattr(self, "build"):  # a TF1-style subclass
            self._first_dtype = self._dtype or tf.nest.flatten(inputs)[0].dtype.base_dtype
            self.build(tf.nest.map_structure(lambda tensor: tensor.shape, inputs))
        elif type(self)._build is not RNNCell._build:
            dtype = self._dtype or tf.nest.flatten(inputs)[-1].dtype.base_dtype
            self._build(self._input_depth(inputs), dtype)

    def _first_scope(self, scope):
        """The variable scope TF1 layers capture on their first call (uniquified default name).

        Every way a cell builds starts here, so this is also where the cell's configuration (the
        attributes it has before it builds) is recorded, for `__deepcopy__`.
        """
        self._configuration = frozenset(self.__dict__)
        if scope is not None:
            return tf.compat.v1.variable_scope(scope, custom_getter=self._own_variable)
        name = self._name or self._default_name or _snake_case(type(self).__name__)
        if self._reuse:
            return tf.compat.v1.variable_scope(name, reuse=self._reuse, custom_getter=self._own_variable)
        return tf.compat.v1.variable_scope(None, default_name=name, custom_getter=self._own_variable)

    def __deepcopy__(self, memo):
        """An unbuilt cell with this cell's configuration: what `copy.deepcopy(cell)` gave in TF1 1.0.

        TF1's legacy_seq2seq deep-copies the decoder's cell to make the encoder's; the copy makes
        weights of its own on its first call (in its own scope, so under reuse it finds the same
        ones again) instead of copying this cell's variables. The configuration is every attribute
        the cell had before it built; wrapped cells are copied the same way, tensors in it (a keep
        probability placeholder) are shared, and a cell repeated in a stack stays one cell.
        """
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        configuration = getattr(self, "_configuration", self.__dict__.keys())
        for key in configuration - {"_scope", "_variables"}:
            value = self.__dict__[key]
            for part in tf.nest.flatten(value):
                if isinstance(part, (tf.Tensor, tf.Operation, tf.Variable, tf.Graph)):
                    memo[id(part)] = part  # graph objects are shared, not copied
            clone.__dict__[key] = copy.deepcopy(value, memo)
        clone._scope = None
        clone._variables = []
        return clone

    def _own_variable(self, getter, *args, **kwargs):
        """Custom getter of the cell's scope: creates variables outside any loop body and records them."""
        lift = tf.init_scope() if tf.compat.v1.get_default_graph().building_function else contextlib.nullcontext()
        with lift:
            variable = getter(*args, **kwargs)
        if all(variable is not known for known in self._variables):
            self._variables.append(variable)
        return variable

    def _add_variable(self, name, shape, dtype, initializer=None, trainable=True):
        """Creates (or, under reuse, fetches) `<scope>/<name>`."""
        with tf.compat.v1.variable_scope(self._scope, auxiliary_name_scope=False):
            return tf.compat.v1.get_variable(
                name, shape=shape, dtype=dtype, initializer=initializer, trainable=trainable
            )

    def add_variable(
        self,
        name: str,
        shape: Sequence[int] | tf.TensorShape,
        dtype: DTypeLike | None = None,
        initializer: Initializer | None = None,
        trainable: bool = True,
    ) -> tf.Variable:
        """TF1's `add_variable` for `build`: a variable in the cell's scope, of the inputs' dtype by default."""
        return self._add_variable(
            name, shape, dtype or getattr(self, "_first_dtype", None) or tf.float32, initializer, trainable
        )

    add_weight = add_variable

    def _input_depth(self, inputs):
        if inputs.shape.rank != 2 or inputs.shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} needs inputs of shape [batch, depth] with a known depth; "
                f"got inputs of shape {inputs.shape}. Give the input placeholder a static last dimension."
            )
        if not (inputs.dtype.is_floating or inputs.dtype.is_complex):
            raise ValueError(f"{type(self).__name__} needs float inputs; got dtype {inputs.dtype.name}.")
        return inputs.shape[-1]


class UnitsCell(RNNCell):
    """Base of a cell of `num_units` units whose state and output are both `[batch, num_units]`."""

    def __init__(
        self, num_units: int, reuse: bool | None = None, name: str | None = None, dtype: DTypeLike | None = None
    ) -> None:
        super().__init__(reuse=reuse, name=name, dtype=dtype)
        self._num_units = num_units

    @property
    def num_units(self) -> int:
        return self._num_units

    @property
    def state_size(self) -> int:
        return self._num_units

    @property
    def output_size(self) -> int:
        return self._num_units


class LSTMUnitsCell(UnitsCell):
    """Base of a cell of `num_units` units whose state is `LSTMStateTuple(c, h)` and whose output is h."""

    @property
    def state_size(self) -> LSTMStateTuple:
        return LSTMStateTuple(self._num_units, self._num_units)


class ProjectedLSTMState:
    """`state_size` / `output_size` of an LSTM of `num_units` cells whose output h is `num_proj` wide if set.

    Mixed into cells that set `_num_units`, `_num_proj` and (if their state may be concatenated)
    `_state_is_tuple`. `tfstate.tuple_layout` splits a concatenated state of any such cell.
    """

    _state_is_tuple = True
    _num_proj = None

    @property
    def num_units(self) -> int:
        return self._num_units

    @property
    def state_size(self) -> LSTMStateTuple | int:
        units, out = self._num_units, self._num_proj or self._num_units
        return LSTMStateTuple(units, out) if self._state_is_tuple else units + out

    @property
    def output_size(self) -> int:
        return self._num_proj or self._num_units


def _linear(inputs, recurrent, kernel, bias):
    """`concat([inputs, recurrent], 1) @ kernel + bias`, TF1's fused gate matmul."""
    return tf.nn.bias_add(tf.matmul(tf.concat([inputs, recurrent], 1), kernel), bias)


class BasicRNNCell(UnitsCell):
    """`output = new_state = activation([inputs, state] @ kernel + bias)`."""

    def __init__(
        self,
        num_units: int,
        activation: Activation | None = None,
        reuse: bool | None = None,
        name: str | None = None,
        dtype: DTypeLike | None = None,
    ) -> None:
        super().__init__(num_units, reuse=reuse, name=name, dtype=dtype)
        self._activation = resolve_activation(activation)

    def _build(self, input_depth, dtype):
        self._kernel = self._add_variable("kernel", [input_depth + self._num_units, self._num_units], dtype)
        self._bias = self._add_variable("bias", [self._num_units], dtype, tf.compat.v1.zeros_initializer())

    def call(self, inputs: TensorNest, state: StateNest) -> tuple[TensorNest, StateNest]:
        output = self._activation(_linear(inputs, state, self._kernel, self._bias))
        return output, output


class GRUCell(UnitsCell):
    """Gated recurrent unit (Cho et al. 2014), TF1 layout:

    r, u = split(sigmoid([x, h] @ gates/kernel + gates/bias))
    c = activation([x, r * h] @ candidate/kernel + candidate/bias)
    new_h = u * h + (1 - u) * c
    """

    _variable_names = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")

    def __init__(
        self,
        num_units: int,
        activation: Activation | None = None,
        reuse: bool | None = None,
        kernel_initializer: Initializer | None = None,
        bias_initializer: Initializer | None = None,
        name: str | None = None,
        dtype: DTypeLike | None = None,
    ) -> None:
        super().__init__(num_units, reuse=reuse, name=name, dtype=dtype)
        self._activation = resolve_activation(activation)
        self._kernel_initializer = kernel_initializer
        self._bias_initializer = bias_initializer

    def _build(self, input_depth, dtype):
        units = self._num_units
        gate_kernel, gate_bias, candidate_kernel, candidate_bias = self._variable_names
        self._gate_kernel = self._add_variable(
            gate_kernel, [input_depth + units, 2 * units], dtype, self._kernel_initializer
        )
        self._gate_bias = self._add_variable(
            gate_bias, [2 * units], dtype, self._bias_initializer or tf.compat.v1.constant_initializer(1.0)
        )
        self._candidate_kernel = self._add_variable(
            candidate_kernel, [input_depth + units, units], dtype, self._kernel_initializer
        )
        self._candidate_bias = self._add_variable(
            candidate_bias, [units], dtype, self._bias_initializer or tf.compat.v1.zeros_initializer()
        )

    def call(self, inputs: TensorNest, state: StateNest) -> tuple[TensorNest, StateNest]:
        gates = tf.sigmoid(_linear(inputs, state, self._gate_kernel, self._gate_bias))
        r, u = tf.split(gates, 2, axis=1)
        candidate = self._activation(_linear(inputs, r * state, self._candidate_kernel, self._candidate_bias))
        new_h = u * state + (1 - u) * candidate
        return new_h, new_h


class BasicLSTMCell(ProjectedLSTMState, RNNCell):
    """LSTM without peepholes or projection (Zaremba et al. 2014), TF1 layout:

    i, j, f, o = split([x, h] @ kernel + bias)          # gate order i, j, f, o
    new_c = c * sigmoid(f + forget_bias) + sigmoid(i) * activation(j)
    new_h = activation(new_c) * sigmoid(o)
    """

    def __init__(
        self,
        num_units: int,
        forget_bias: float = 1.0,
        state_is_tuple: bool = True,
        activation: Activation | None = None,
        reuse: bool | None = None,
        name: str | None = None,
        dtype: DTypeLike | None = None,
    ) -> None:
        super().__init__(reuse=reuse, name=name, dtype=dtype)
        self._num_units = num_units
        self._forget_bias = forget_bias
        self._state_is_tuple = state_is_tuple
        self._activation = resolve_activation(activation)

    def _build(self, input_depth, dtype):
        units = self._num_units
        self._kernel = self._add_variable("kernel", [input_depth + units, 4 * units], dtype)
        self._bias = self._add_variable("bias", [4 * units], dtype, tf.compat.v1.zeros_initializer())

    def call(self, inputs: TensorNest, state: StateNest) -> tuple[TensorNest, StateNest]:
        if self._state_is_tuple:
            c, h = state
        else:
            c, h = tf.split(state, 2, axis=1)
        i, j, f, o = tf.split(_linear(inputs, h, self._kernel, self._bias), 4, axis=1)
        forget_bias = tf.constant(self._forget_bias, dtype=f.dtype)
        new_c = c * tf.sigmoid(f + forget_bias) + tf.sigmoid(i) * self._activation(j)
        new_h = self._activation(new_c) * tf.sigmoid(o)
        new_state = LSTMStateTuple(new_c, new_h) if self._state_is_tuple else tf.concat([new_c, new_h], 1)
        return new_h, new_state


class LSTMCell(ProjectedLSTMState, RNNCell):
    """LSTM with optional peepholes, cell clipping and output projection (Sak et al. 2014), TF1 layout:

        i, j, f, o = split([x, m] @ kernel + bias)
        c = sigmoid(f + forget_bias [+ w_f_diag * c_prev]) * c_prev
            + sigmoid(i [+ w_i_diag * c_prev]) * activation(j)          then clip to ±cell_clip
        m = sigmoid(o [+ w_o_diag * c]) * activation(c)
        m = m @ projection/kernel                                          then clip to ±proj_clip

    The state is `LSTMStateTuple(c, m)`, or `concat([c, m], 1)` when `state_is_tuple=False`.
    """

    def __init__(
        self,
        num_units: int,
        use_peepholes: bool = False,
        cell_clip: float | None = None,
        initializer: Initializer | None = None,
        num_proj: int | None = None,
        proj_clip: float | None = None,
        num_unit_shards: int | None = None,
        num_proj_shards: int | None = None,
        forget_bias: float = 1.0,
        state_is_tuple: bool = True,
        activation: Activation | None = None,
        reuse: bool | None = None,
        name: str | None = None,
        dtype: DTypeLike | None = None,
    ) -> None:
        super().__init__(reuse=reuse, name=name, dtype=dtype)
        if num_unit_shards is not None or num_proj_shards is not None:
            raise ValueError(
                "LSTMCell(num_unit_shards=..., num_proj_shards=...) made partitioned variables, deprecated "
                "since TF 1.x and not supported by tfstate; leave both None (the checkpoint names do not change)."
            )
        self._num_units = num_units
        self._use_peepholes = use_peepholes
        self._cell_clip = cell_clip
        self._initializer = initializer
        self._num_proj = num_proj
        self._proj_clip = proj_clip
        self._forget_bias = forget_bias
        self._state_is_tuple = state_is_tuple
        self._activation = resolve_activation(activation)

    def _build(self, input_depth, dtype):
        units, init = self._num_units, self._initializer
        self._kernel = self._add_variable("kernel", [input_depth + self.output_size, 4 * units], dtype, init)
        self._bias = self._add_variable("bias", [4 * units], dtype, tf.compat.v1.zeros_initializer())
        if self._use_peepholes:
            self._w_f_diag = self._add_variable("w_f_diag", [units], dtype, init)
            self._w_i_diag = self._add_variable("w_i_diag", [units], dtype, init)
            self._w_o_diag = self._add_variable("w_o_diag", [units], dtype, init)
        if self._num_proj is not None:
            self._proj_kernel = self._add_variable("projection/kernel", [units, self._num_proj], dtype, init)

    def call(self, inputs: TensorNest, state: StateNest) -> tuple[TensorNest, StateNest]:
        if self._state_is_tuple:
            c_prev, m_prev = state
        else:
            c_prev = state[:, : self._num_units]
            m_prev = state[:, self._num_units :]
        i, j, f, o = tf.split(_linear(inputs, m_prev, self._kernel, self._bias), 4, axis=1)
        if self._use_peepholes:
            c = tf.sigmoid(f + self._forget_bias + self._w_f_diag * c_prev) * c_prev + tf.sigmoid(
                i + self._w_i_diag * c_prev
            ) * self._activation(j)
        else:
            c = tf.sigmoid(f + self._forget_bias) * c_prev + tf.sigmoid(i) * self._activation(j)
        if self._cell_clip is not None:
            c = tf.clip_by_value(c, -self._cell_clip, self._cell_clip)
        if self._use_peepholes:
            m = tf.sigmoid(o + self._w_o_diag * c) * self._activation(c)
        else:
            m = tf.sigmoid(o) * self._activation(c)
        if self._num_proj is not None:
            m = tf.matmul(m, self._proj_kernel)
            if self._proj_clip is not None:
                m = tf.clip_by_value(m, -self._proj_clip, self._proj_clip)
        new_state = LSTMStateTuple(c, m) if self._state_is_tuple else tf.concat([c, m], 1)
        return m, new_state


class MultiRNNCell(RNNCell):
    """Cells stacked in order: layer k reads layer k-1's output, under scope `cell_k`.

    With `state_is_tuple=False` the layers' states are concatenated along the columns.
    `MultiRNNCell([cell] * n)` gives every layer the same cell object, hence the same weights; as in
    TF1, that gets a warning (Python's `warnings`, shown once per call site by default).
    """

    _default_name = "multi_rnn_cell"  # kept by subclasses such as tfstate.fused.FusedMultiRNNCell

    def __init__(self, cells: Sequence[RNNCell], state_is_tuple: bool = True) -> None:
        super().__init__()
        if not cells:
            raise ValueError("MultiRNNCell needs at least one cell; got an empty list.")
        if not isinstance(cells, (list, tuple)):
            raise TypeError(f"MultiRNNCell needs a list or tuple of cells; got {type(cells).__name__}.")
        if not state_is_tuple and any(tf.nest.is_nested(cell.state_size) for cell in cells):
            raise ValueError(
                "MultiRNNCell(state_is_tuple=False) needs cells with flat states (e.g. "
                "LSTMCell(state_is_tuple=False)); got state sizes "
                f"{[cell.state_size for cell in cells]}."
            )
        if len({id(cell) for cell in cells}) < len(cells):
            warnings.warn(
                "At least two cells provided to MultiRNNCell are the same object and will share weights.", stacklevel=2
            )
        self._cells = list(cells)
        self._state_is_tuple = state_is_tuple

    @property
    def cells(self) -> list[RNNCell]:
        return list(self._cells)

    @property
    def state_size(self) -> StateSize:
        if self._state_is_tuple:
            return tuple(cell.state_size for cell in self._cells)
        return sum(cell.state_size for cell in self._cells)

    @property
    def output_size(self) -> StateSize:
        return self._cells[-1].output_size

    @property
    def variables(self) -> list[tf.Variable]:
        seen, result = set(), []
        for cell in self._cells:
            for variable in cell.variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    result.append(variable)
        return result

    trainable_variables = variables
    weights = variables
    trainable_weights = variables

    def zero_state(self, batch_size: int | tf.Tensor, dtype: DTypeLike) -> StateNest:
        if not self._state_is_tuple:
            return super().zero_state(batch_size, dtype)
        with tf.name_scope(type(self).__name__ + "ZeroState"):
            return tuple(cell.zero_state(batch_size, dtype) for cell in self._cells)

    def call(self, inputs: TensorNest, state: StateNest) -> tuple[TensorNest, StateNest]:
        layer_input, new_states, column = inputs, [], 0
        for index, cell in enumerate(self._cells):
            with tf.compat.v1.variable_scope(f"cell_{index}"):
                if self._state_is_tuple:
                    layer_state = state[index]
                else:
                    layer_state = state[:, column : column + cell.state_size]
                    column += cell.state_size
                layer_input, new_state = cell(layer_input, layer_state)
                new_states.append(new_state)
        return layer_input, tuple(new_states) if self._state_is_tuple else tf.concat(new_states, 1)


class CellWrapper(RNNCell):
    """A cell around another cell: same state, same variables, no scope level of its own."""

    def __init__(self, cell: RNNCell) -> None:
        super().__init__()
        for required in ("state_size", "output_size", "zero_state"):
            if not hasattr(cell, required):
                raise TypeError(f"{type(self).__name__} wraps an RNN cell; {cell!r} has no {required}.")
        self.cell = cell

    @property
    def wrapped_cell(self) -> RNNCell:
        return self.cell

    @property
    def state_size(self) -> StateSize:
        return self.cell.state_size

    @property
    def output_size(self) -> StateSize:
        return self.cell.output_size

    @property
    def built(self) -> bool:
        return getattr(self.cell, "built", True)

    @property
    def variables(self) -> list[tf.Variable]:
        return list(getattr(self.cell, "variables", []))

    trainable_variables = variables
    weights = variables
    trainable_weights = variables

    def zero_state(self, batch_size: int | tf.Tensor, dtype: DTypeLike) -> StateNest:
        with tf.name_scope(type(self).__name__ + "ZeroState"):
            return self.cell.zero_state(batch_size, dtype)

    def __call__(
        self, inputs: TensorNest, state: StateNest, scope: Scope | None = None
    ) -> tuple[TensorNest, StateNest]:
        require_graph_mode(type(self).__name__)
        return self._wrap(inputs, state, lambda x, s: self.cell(x, s, scope=scope))

    def _wrap(self, inputs, state, call):
        """One step around the wrapped cell: `call(inputs, state)` runs it; returns `(output, new_state)`.

        Every wrapper defines it (dropout around the step, a residual sum, a device scope, ...).
        """
        raise NotImplementedError(f"{type(self).__name__} must define _wrap(inputs, state, call).")


def keep_probability(value: float | tf.Tensor, name: str, owner: str = "DropoutWrapper") -> float | tf.Tensor:
    """A keep probability as a Python float in [0, 1], or a tensor left as it is."""
    static = tf.get_static_value(tf.convert_to_tensor(value))
    if static is None:
        return tf.convert_to_tensor(value)
    if not 0 <= static <= 1:
        raise ValueError(f"{owner} {name} must be in [0, 1]; got {static}.")
    return float(static)


class DropoutWrapper(CellWrapper):
    """Dropout on a cell's inputs, outputs and new states, with TF1's per-op seeds.

    The `c` part of an `LSTMStateTuple` is never dropped (TF1's default state filter).
    Each dropout draws a fresh mask per step; with `variational_recurrent=True` (which needs `dtype`, and
    `input_size` where inputs are dropped) it draws one mask per `session.run` instead, as TF1 did: noise of
    shape [1, size] made when the wrapper is built, so every step and every batch row share it.
    """

    def __init__(
        self,
        cell: RNNCell,
        input_keep_prob: float | tf.Tensor = 1.0,
        output_keep_prob: float | tf.Tensor = 1.0,
        state_keep_prob: float | tf.Tensor = 1.0,
        variational_recurrent: bool = False,
        input_size: StateSize | None = None,
        dtype: DTypeLike | None = None,
        seed: int | None = None,
        dropout_state_filter_visitor: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(cell)
        if dropout_state_filter_visitor is not None:
            raise ValueError(
                "DropoutWrapper(dropout_state_filter_visitor=...) is not supported by tfstate; "
                "the default filter (never drop an LSTM's c) applies."
            )
        self._input_keep_prob = keep_probability(input_keep_prob, "input_keep_prob")
        self._output_keep_prob = keep_probability(output_keep_prob, "output_keep_prob")
        self._state_keep_prob = keep_probability(state_keep_prob, "state_keep_prob")
        self._seed = seed
        self._noise = self._variational_noise(input_size, dtype) if variational_recurrent else None

    def _variational_noise(self, input_size, dtype):
        """{"input", "state", "output": nest of uniform noise shaped [1, size]}: TF1's masks for one run."""
        require_graph_mode("DropoutWrapper(variational_recurrent=True)")
        if dtype is None:
            raise ValueError(
                "DropoutWrapper(variational_recurrent=True) needs dtype, the dtype of its masks; got dtype=None. "
                "Pass the cell's dtype, e.g. dtype=tf.float32."
            )
        if _active(self._input_keep_prob) and input_size is None:
            raise ValueError(
                "DropoutWrapper(variational_recurrent=True) with input_keep_prob < 1 needs input_size, the depth "
                "of the cell's inputs; got input_size=None. Pass e.g. input_size=inputs.shape[-1]."
            )
        sizes = {"input": input_size, "state": self.cell.state_size, "output": self.cell.output_size}
        return {
            salt: tf.nest.pack_sequence_as(
                size,
                [
                    tf.random.uniform(
                        [1, *tf.TensorShape(leaf).as_list()], seed=self._op_seed(salt, index), dtype=dtype
                    )
                    for index, leaf in enumerate(tf.nest.flatten(size))
                ],
            )
            for salt, size in sizes.items()
            if size is not None
        }

    def _op_seed(self, salt_prefix, index):
        """TF1's seed per dropout site: md5 of seed + salt, so masks match TF1's for the same seed."""
        if self._seed is None:
            return None
        text = (str(self._seed) + f"{salt_prefix}_{index}").encode("utf-8")
        return int(hashlib.md5(text).hexdigest()[:8], 16) & 0x7FFFFFFF

    def _dropout(self, values, salt_prefix, keep_prob, keep_mask=None):
        flat = tf.nest.flatten(values)
        masks = tf.nest.flatten(keep_mask) if keep_mask is not None else [True] * len(flat)
        noise = tf.nest.flatten(self._noise[salt_prefix]) if self._noise else [None] * len(flat)
        dropped = [
            self._drop(value, keep_prob, self._op_seed(salt_prefix, index), leaf_noise) if apply else value
            for index, (value, apply, leaf_noise) in enumerate(zip(flat, masks, noise))
        ]
        return tf.nest.pack_sequence_as(values, dropped)

    @staticmethod
    def _drop(value, keep_prob, seed, noise):
        """A fresh mask (`tf.nn.dropout`), or TF1's variational one: value / keep * floor(keep + noise)."""
        if noise is None:
            return tf.nn.dropout(value, rate=1.0 - keep_prob, seed=seed)
        dropped = value / keep_prob * tf.floor(keep_prob + noise)
        dropped.set_shape(value.shape)
        return dropped

    def _wrap(self, inputs, state, call):
        if _active(self._input_keep_prob):
            inputs = self._dropout(inputs, "input", self._input_keep_prob)
        output, new_state = call(inputs, state)
        if _active(self._state_keep_prob):
            new_state = self._dropout(new_state, "state", self._state_keep_prob, _state_filter(new_state))
        if _active(self._output_keep_prob):
            output = self._dropout(output, "output", self._output_keep_prob)
        return output, new_state


def _active(keep_prob):
    """Whether a keep probability drops anything (a tensor may)."""
    return not isinstance(keep_prob, float) or keep_prob < 1


def _state_filter(state):
    """Which state leaves dropout may touch: all but the `c` of every LSTMStateTuple."""
    if isinstance(state, LSTMStateTuple):
        return [False, True]
    if isinstance(state, (tuple, list)):
        return [flag for part in state for flag in tf.nest.flatten(_state_filter(part))]
    return [True]


class ResidualWrapper(CellWrapper):
    """Adds the cell's inputs to its outputs (or applies `residual_fn(inputs, outputs)`)."""

    def __init__(
        self, cell: RNNCell, residual_fn: Callable[[TensorNest, TensorNest], TensorNest] | None = None
    ) -> None:
        super().__init__(cell)
        self._residual_fn = residual_fn

    def _wrap(self, inputs, state, call):
        output, new_state = call(inputs, state)
        if self._residual_fn is not None:
            return self._residual_fn(inputs, output), new_state
        if not inputs.shape.is_compatible_with(output.shape):
            raise ValueError(
                f"ResidualWrapper adds inputs to outputs, so their shapes must match; got inputs "
                f"{inputs.shape} and outputs {output.shape}. Give the cell as many units as the input depth."
            )
        return inputs + output, new_state


class DeviceWrapper(CellWrapper):
    """Runs the wrapped cell's step under `tf.device(device)`."""

    def __init__(self, cell: RNNCell, device: str) -> None:
        super().__init__(cell)
        self._device = device

    def zero_state(self, batch_size: int | tf.Tensor, dtype: DTypeLike) -> StateNest:
        with tf.device(self._device):
            return super().zero_state(batch_size, dtype)

    def _wrap(self, inputs, state, call):
        with tf.device(self._device):
            return call(inputs, state)
