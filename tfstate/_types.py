"""Type aliases for the hints on tfstate's public signatures (TensorFlow's own API is untyped, so they stay broad)."""

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np
import tensorflow as tf

TensorNest: TypeAlias = tf.Tensor | Sequence[Any]
"""A tensor, or a tuple, namedtuple or list nesting tensors (an RNN's inputs or outputs)."""

StateNest: TypeAlias = tf.Tensor | Sequence[Any]
"""A state in the graph: a tensor, or a tuple / namedtuple (`LSTMStateTuple`) nesting tensors like a `state_size`."""

StateValues: TypeAlias = np.ndarray | Sequence[Any]
"""A state's values outside the graph: a NumPy array, or a tuple / namedtuple nesting arrays like the state."""

StateSize: TypeAlias = int | tf.TensorShape | Sequence[Any]
"""A `state_size` or `output_size`: an int, a `TensorShape`, or a tuple / namedtuple nesting them."""

DTypeLike: TypeAlias = tf.DType | np.dtype | type | str
"""Anything `tf.as_dtype` takes: `tf.float32`, `np.float32`, "float32", ..."""

Activation: TypeAlias = Callable[[tf.Tensor], tf.Tensor] | str
"""An activation: a callable, or the name of one in `tf.math` or `tf.nn` ("relu")."""

Initializer: TypeAlias = Callable[..., Any]
"""A TF1 variable initializer (`tf.compat.v1.zeros_initializer()`, ...): called with a shape and dtype."""

Scope: TypeAlias = str | tf.compat.v1.VariableScope
"""A variable scope, by name or as the object `tf.compat.v1.variable_scope` yields."""
