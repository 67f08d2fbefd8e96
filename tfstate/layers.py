"""TF1-compatible layers: `tf.layers.dense` / `Dense`, `tf.contrib.layers.fully_connected` / `embed_sequence`.

All create their weights with `tf.compat.v1.get_variable` under TF1's scope names
(`dense/kernel`, `dense_1/kernel`, ...; `fully_connected/weights`, `fully_connected/biases`;
`EmbedSequence/embeddings`), so TF1 checkpoints restore into them and `reuse=True` shares weights
as it did in TF1. A `Dense` object owns its weights, as TF1's layer objects did: made on its
first call, used by every later call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from tfstate._checks import require_graph_mode
from tfstate._types import DTypeLike, Initializer, Scope

__all__ = ["dense", "Dense", "fully_connected", "embed_sequence"]


def _affine(inputs, kernel, bias):
    """`inputs @ kernel (+ bias)` over the last axis of inputs of any rank >= 2."""
    if inputs.shape.rank == 2:
        outputs = tf.matmul(inputs, kernel)
    else:
        outputs = tf.tensordot(inputs, kernel, [[inputs.shape.rank - 1], [0]])
        outputs.set_shape(inputs.shape[:-1].concatenate(kernel.shape[-1:]))
    return tf.nn.bias_add(outputs, bias) if bias is not None else outputs


def _input_depth(inputs, layer):
    if inputs.shape.rank is None or inputs.shape.rank < 2 or inputs.shape[-1] is None:
        raise ValueError(f"{layer} needs inputs of rank >= 2 with a known last dimension; got shape {inputs.shape}.")
    return inputs.shape[-1]


def _scope(name, default_name, reuse):
    """TF1's layer scope: the given or default name, uniquified unless reusing."""
    if reuse:
        return tf.compat.v1.variable_scope(name or default_name, reuse=reuse)
    return tf.compat.v1.variable_scope(name, default_name=default_name)


def dense(
    inputs: tf.Tensor,
    units: int,
    activation: Callable[[tf.Tensor], tf.Tensor] | None = None,
    use_bias: bool = True,
    kernel_initializer: Initializer | None = None,
    bias_initializer: Initializer | None = tf.compat.v1.zeros_initializer(),
    kernel_regularizer: Callable[[tf.Tensor], tf.Tensor] | None = None,
    bias_regularizer: Callable[[tf.Tensor], tf.Tensor] | None = None,
    activity_regularizer: Callable[[tf.Tensor], tf.Tensor] | None = None,
    kernel_constraint: Callable[[tf.Tensor], tf.Tensor] | None = None,
    bias_constraint: Callable[[tf.Tensor], tf.Tensor] | None = None,
    trainable: bool = True,
    name: str | None = None,
    reuse: bool | None = None,
) -> tf.Tensor:
    """`activation(inputs @ kernel + bias)` with variables `<name>/kernel` and `<name>/bias`.

    The scope is `dense` (then `dense_1`, `dense_2`, ... for later calls) unless `name` is given;
    `reuse=True` with the same `name` shares the weights of an earlier call.
    """
    require_graph_mode("tfstate.layers.dense")
    inputs = tf.convert_to_tensor(inputs)
    depth = _input_depth(inputs, "tfstate.layers.dense")
    dtype = inputs.dtype.base_dtype
    with _scope(name, "dense", reuse):
        kernel = tf.compat.v1.get_variable(
            "kernel",
            [depth, units],
            dtype,
            kernel_initializer,
            kernel_regularizer,
            trainable=trainable,
            constraint=kernel_constraint,
        )
        bias = (
            tf.compat.v1.get_variable(
                "bias",
                [units],
                dtype,
                bias_initializer,
                bias_regularizer,
                trainable=trainable,
                constraint=bias_constraint,
            )
            if use_bias
            else None
        )
        outputs = _affine(inputs, kernel, bias)
        if activation is not None:
            outputs = activation(outputs)
        if activity_regularizer is not None:
            tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES, activity_regularizer(outputs))
        return outputs


def fully_connected(
    inputs: tf.Tensor,
    num_outputs: int,
    activation_fn: Callable[[tf.Tensor], tf.Tensor] | None = tf.nn.relu,
    normalizer_fn: Callable[..., tf.Tensor] | None = None,
    normalizer_params: dict[str, Any] | None = None,
    weights_initializer: Initializer = tf.compat.v1.glorot_uniform_initializer(),
    weights_regularizer: Callable[[tf.Tensor], tf.Tensor] | None = None,
    biases_initializer: Initializer | None = tf.compat.v1.zeros_initializer(),
    biases_regularizer: Callable[[tf.Tensor], tf.Tensor] | None = None,
    reuse: bool | None = None,
    variables_collections: Sequence[str] | None = None,
    outputs_collections: Sequence[str] | None = None,
    trainable: bool = True,
    scope: Scope | None = None,
) -> tf.Tensor:
    """TF1 contrib's fully connected layer: variables `<scope>/weights` and `<scope>/biases`.

    As in TF1, the default activation is ReLU, and a `normalizer_fn` replaces the biases.
    """
    require_graph_mode("tfstate.layers.fully_connected")
    inputs = tf.convert_to_tensor(inputs)
    depth = _input_depth(inputs, "tfstate.layers.fully_connected")
    dtype = inputs.dtype.base_dtype
    collections = [tf.compat.v1.GraphKeys.GLOBAL_VARIABLES, tf.compat.v1.GraphKeys.MODEL_VARIABLES]
    collections += list(variables_collections or [])
    with _scope(scope, "fully_connected", reuse):
        weights = tf.compat.v1.get_variable(
            "weights",
            [depth, num_outputs],
            dtype,
            weights_initializer,
            weights_regularizer,
            trainable=trainable,
            collections=collections,
        )
        biases = None
        if normalizer_fn is None and biases_initializer is not None:
            biases = tf.compat.v1.get_variable(
                "biases",
                [num_outputs],
                dtype,
                biases_initializer,
                biases_regularizer,
                trainable=trainable,
                collections=collections,
            )
        outputs = _affine(inputs, weights, biases)
        if normalizer_fn is not None:
            outputs = normalizer_fn(outputs, **(normalizer_params or {}))
        if activation_fn is not None:
            outputs = activation_fn(outputs)
        for collection in outputs_collections or []:
            tf.compat.v1.add_to_collection(collection, outputs)
        return outputs


class Dense:
    """TF1's `tf.layers.Dense`: `activation(inputs @ kernel + bias)`, an object that owns its weights.

    The first call creates `<scope>/<name>/kernel` (`[input_depth, units]`) and `<scope>/<name>/bias`
    in the variable scope it is called in (name `dense`, then `dense_1`, ... unless `name` is given);
    every later call, from anywhere, uses the same two variables (and re-enters that scope, as TF1's
    layers did, so later layers are numbered as TF1 numbered them). This is what TF1's seq2seq code
    passes around: `output_layer=Dense(vocab_size)` for a decoder, the attention mechanisms'
    `memory_layer` / `query_layer` and the `attention_layer`. `_reuse=True` fetches existing
    variables of that name instead, as TF1's `_reuse` did.
    """

    def __init__(
        self,
        units: int,
        activation: Callable[[tf.Tensor], tf.Tensor] | None = None,
        use_bias: bool = True,
        kernel_initializer: Initializer | None = None,
        bias_initializer: Initializer | None = tf.compat.v1.zeros_initializer(),
        kernel_regularizer: Callable[[tf.Tensor], tf.Tensor] | None = None,
        bias_regularizer: Callable[[tf.Tensor], tf.Tensor] | None = None,
        activity_regularizer: Callable[[tf.Tensor], tf.Tensor] | None = None,
        kernel_constraint: Callable[[tf.Tensor], tf.Tensor] | None = None,
        bias_constraint: Callable[[tf.Tensor], tf.Tensor] | None = None,
        trainable: bool = True,
        name: str | None = None,
        dtype: DTypeLike | None = None,
        _reuse: bool | None = None,
    ) -> None:
        self.units = int(units)
        self.activation = activation
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self.activity_regularizer = activity_regularizer
        self.kernel_constraint = kernel_constraint
        self.bias_constraint = bias_constraint
        self.trainable = trainable
        self._name = name
        self._dtype = tf.as_dtype(dtype) if dtype is not None else None
        self._reuse = _reuse
        self.kernel = None
        self.bias = None
        self._scope = None

    @property
    def name(self) -> str:
        """The variable scope's name once built (e.g. `decoder/dense`), else the name given or `dense`."""
        return self._scope.name if self._scope is not None else self._name or "dense"

    @property
    def dtype(self) -> tf.DType | None:
        return self._dtype or (self.kernel.dtype.base_dtype if self.built else None)

    @property
    def built(self) -> bool:
        return self.kernel is not None

    @property
    def variables(self) -> list[tf.Variable]:
        return [v for v in (self.kernel, self.bias) if v is not None]

    trainable_variables = variables
    weights = variables
    trainable_weights = variables

    def compute_output_shape(self, input_shape: tf.TensorShape | Sequence[int | None]) -> tf.TensorShape:
        """`input_shape` with its last dimension replaced by `units` (TF1's, for decoders' `output_size`)."""
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank is None or input_shape.rank < 1 or input_shape[-1] is None:
            raise ValueError(f"Dense needs an input shape with a known last dimension; got {input_shape}.")
        return input_shape[:-1].concatenate(self.units)

    def __call__(self, inputs: tf.Tensor) -> tf.Tensor:
        """Applies the layer; the first call creates the weights in the current variable scope."""
        require_graph_mode("tfstate.layers.Dense")
        inputs = tf.convert_to_tensor(inputs)
        depth = _input_depth(inputs, "tfstate.layers.Dense")
        if not self.built:
            with _scope(None, self._name or "dense", self._reuse) as scope:
                self._scope = scope
                self._build(depth, self._dtype or inputs.dtype.base_dtype)
                return self._apply(inputs)
        if self.kernel.shape[0] != depth:
            raise ValueError(
                f"Dense '{self.name}' was built for inputs of depth {self.kernel.shape[0]}; "
                f"got inputs of shape {inputs.shape}."
            )
        with tf.compat.v1.variable_scope(self._scope, reuse=True, auxiliary_name_scope=False):
            return self._apply(inputs)

    apply = __call__

    def _build(self, depth, dtype):
        self.kernel = tf.compat.v1.get_variable(
            "kernel",
            [depth, self.units],
            dtype,
            self.kernel_initializer,
            self.kernel_regularizer,
            trainable=self.trainable,
            constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = tf.compat.v1.get_variable(
                "bias",
                [self.units],
                dtype,
                self.bias_initializer,
                self.bias_regularizer,
                trainable=self.trainable,
                constraint=self.bias_constraint,
            )

    def _apply(self, inputs):
        outputs = _affine(inputs, self.kernel, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        if self.activity_regularizer is not None:
            tf.compat.v1.add_to_collection(
                tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES, self.activity_regularizer(outputs)
            )
        return outputs


def embed_sequence(
    ids: tf.Tensor,
    vocab_size: int | None = None,
    embed_dim: int | None = None,
    unique: bool = False,
    initializer: Initializer | None = None,
    regularizer: Callable[[tf.Tensor], tf.Tensor] | None = None,
    trainable: bool = True,
    scope: Scope | None = None,
    reuse: bool | None = None,
) -> tf.Tensor:
    """TF1 contrib's `embed_sequence`: `ids` (`[batch, time]`) looked up in `<scope>/embeddings`.

    The scope is `EmbedSequence` (then `EmbedSequence_1`, ...) unless `scope` is given; the table is
    `[vocab_size, embed_dim]` and, as in TF1, also in the MODEL_VARIABLES collection. With
    `reuse=True` the sizes may be left out. `unique=True` looks every distinct id up once (same result).
    """
    require_graph_mode("tfstate.layers.embed_sequence")
    if not (reuse or (vocab_size and embed_dim)):
        raise ValueError(
            "embed_sequence needs vocab_size and embed_dim unless reusing an existing table; "
            f"got vocab_size={vocab_size} and embed_dim={embed_dim}."
        )
    ids = tf.convert_to_tensor(ids)
    collections = [tf.compat.v1.GraphKeys.GLOBAL_VARIABLES, tf.compat.v1.GraphKeys.MODEL_VARIABLES]
    with tf.compat.v1.variable_scope(scope, "EmbedSequence", [ids], reuse=reuse):
        shape = None if vocab_size is None or embed_dim is None else [vocab_size, embed_dim]
        embeddings = tf.compat.v1.get_variable(
            "embeddings",
            shape,
            initializer=initializer,
            regularizer=regularizer,
            trainable=trainable,
            collections=collections,
        )
        if not unique:
            return tf.nn.embedding_lookup(embeddings, ids)
        distinct, index = tf.unique(tf.reshape(ids, [-1]))
        looked_up = tf.gather(tf.gather(embeddings, distinct), index)
        result = tf.reshape(looked_up, tf.concat([tf.shape(ids), tf.shape(embeddings)[1:]], 0))
        result.set_shape(ids.shape.concatenate(embeddings.shape[1:]))
        return result
