"""Cell wrappers with weights of their own: TF1 contrib's Embedding, InputProjection and OutputProjection wrappers.

Each opens a scope of its own on its first call, holding its weights and the wrapped cell's, as in TF1:

    rnn/embedding_wrapper/embedding                       EmbeddingWrapper(GRUCell(n), classes, size)
    rnn/embedding_wrapper/gru_cell/gates/kernel, ...
    rnn/output_projection_wrapper/gru_cell/...            OutputProjectionWrapper(GRUCell(n), k)
    rnn/output_projection_wrapper/kernel, .../bias
"""

import math

import tensorflow as tf

from tfstate._linear import linear
from tfstate.cells import CellWrapper, RNNCell


class _WrapperWithWeights(CellWrapper):
    """A `CellWrapper` that, unlike the others, has a scope (and weights) of its own, like any tfstate cell."""

    __call__ = RNNCell.__call__
    built = RNNCell.built

    def __init__(self, cell, reuse=None):
        super().__init__(cell)
        self._reuse = reuse

    @property
    def variables(self):
        """The wrapper's weights and the wrapped cell's (also when the cell was built elsewhere)."""
        own = list(self._variables)
        return own + [v for v in getattr(self.cell, "variables", []) if all(v is not known for known in own)]

    trainable_variables = variables
    weights = variables
    trainable_weights = variables


class EmbeddingWrapper(_WrapperWithWeights):
    """Embeds integer symbols before the cell: `cell(embedding[inputs], state)` (TF1 contrib's `EmbeddingWrapper`).

    Inputs are symbol ids `[batch]` (or `[batch, 1]`). The variable `embedding_wrapper/embedding`
    `[embedding_classes, embedding_size]` has the state's dtype and is initialized by `initializer`,
    else by the scope's initializer, else uniformly in ±sqrt(3) (variance 1), as in TF1.
    """

    def __init__(self, cell, embedding_classes, embedding_size, initializer=None, reuse=None):
        super().__init__(cell, reuse)
        if embedding_classes <= 0 or embedding_size <= 0:
            raise ValueError(
                f"EmbeddingWrapper needs embedding_classes > 0 and embedding_size > 0; got "
                f"embedding_classes={embedding_classes}, embedding_size={embedding_size}."
            )
        self._embedding_classes = embedding_classes
        self._embedding_size = embedding_size
        self._initializer = initializer

    def __call__(self, inputs, state, scope=None):
        inputs = tf.convert_to_tensor(inputs)
        if not inputs.dtype.is_integer:  # checked before the first call captures a scope
            raise ValueError(
                f"EmbeddingWrapper embeds integer symbol ids; got inputs of dtype {inputs.dtype.name} "
                f"(shape {inputs.shape}). Feed the ids, not their embeddings or one-hot vectors."
            )
        return super().__call__(inputs, state, scope)

    def call(self, inputs, state):
        sqrt3 = math.sqrt(3)
        initializer = (
            self._initializer
            or tf.compat.v1.get_variable_scope().initializer
            or tf.compat.v1.random_uniform_initializer(-sqrt3, sqrt3)
        )
        embedding = tf.compat.v1.get_variable(
            "embedding",
            [self._embedding_classes, self._embedding_size],
            dtype=tf.nest.flatten(state)[0].dtype,
            initializer=initializer,
        )
        return self.cell(tf.nn.embedding_lookup(embedding, tf.reshape(inputs, [-1])), state)


class InputProjectionWrapper(_WrapperWithWeights):
    """Projects the inputs before the cell: `cell(activation(inputs @ kernel + bias), state)` (TF1 contrib's).

    Variables `input_projection_wrapper/kernel` `[input depth, num_proj]` and `.../bias`; the
    wrapped cell's live under `input_projection_wrapper/`. `input_size` was deprecated and unused
    in TF1; it is accepted and ignored.
    """

    def __init__(self, cell, num_proj, activation=None, input_size=None, reuse=None):
        super().__init__(cell, reuse)
        self._num_proj = num_proj
        self._activation = activation

    def call(self, inputs, state):
        projected = linear(inputs, self._num_proj, True)
        if self._activation:
            projected = self._activation(projected)
        return self.cell(projected, state)


class OutputProjectionWrapper(_WrapperWithWeights):
    """Projects the cell's output: `activation(cell_output @ kernel + bias)` (TF1 contrib's `OutputProjectionWrapper`).

    The state is the cell's. Variables `output_projection_wrapper/kernel` `[cell.output_size,
    output_size]` and `.../bias`, made after the wrapped cell's (which live under
    `output_projection_wrapper/`), as in TF1.
    """

    def __init__(self, cell, output_size, activation=None, reuse=None):
        super().__init__(cell, reuse)
        if output_size < 1:
            raise ValueError(f"OutputProjectionWrapper needs output_size >= 1; got {output_size}.")
        self._output_size = output_size
        self._activation = activation

    @property
    def output_size(self):
        return self._output_size

    def call(self, inputs, state):
        output, new_state = self.cell(inputs, state)
        projected = linear(output, self._output_size, True)
        if self._activation:
            projected = self._activation(projected)
        return projected, new_state
