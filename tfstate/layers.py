"""TF1-compatible dense layers: `tf.compat.v1.layers.dense` and `tf.contrib.layers.fully_connected`.

Both create their weights with `tf.compat.v1.get_variable` under TF1's scope names
(`dense/kernel`, `dense_1/kernel`, ...; `fully_connected/weights`, `fully_connected/biases`),
so TF1 checkpoints restore into them and `reuse=True` shares weights as it did in TF1.
"""

import tensorflow as tf

from tfstate._checks import require_graph_mode

__all__ = ["dense", "fully_connected"]


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
        raise ValueError(
            f"{layer} needs inputs of rank >= 2 with a known last dimension; got shape {inputs.shape}."
        )
    return inputs.shape[-1]


def _scope(name, default_name, reuse):
    """TF1's layer scope: the given or default name, uniquified unless reusing."""
    if reuse:
        return tf.compat.v1.variable_scope(name or default_name, reuse=reuse)
    return tf.compat.v1.variable_scope(name, default_name=default_name)


def dense(inputs, units, activation=None, use_bias=True, kernel_initializer=None,
          bias_initializer=tf.compat.v1.zeros_initializer(), kernel_regularizer=None, bias_regularizer=None,
          activity_regularizer=None, kernel_constraint=None, bias_constraint=None, trainable=True,
          name=None, reuse=None):
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
            "kernel", [depth, units], dtype, kernel_initializer, kernel_regularizer,
            trainable=trainable, constraint=kernel_constraint)
        bias = tf.compat.v1.get_variable(
            "bias", [units], dtype, bias_initializer, bias_regularizer,
            trainable=trainable, constraint=bias_constraint) if use_bias else None
        outputs = _affine(inputs, kernel, bias)
        if activation is not None:
            outputs = activation(outputs)
        if activity_regularizer is not None:
            tf.compat.v1.add_to_collection(
                tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES, activity_regularizer(outputs))
        return outputs


def fully_connected(inputs, num_outputs, activation_fn=tf.nn.relu, normalizer_fn=None, normalizer_params=None,
                    weights_initializer=tf.compat.v1.glorot_uniform_initializer(), weights_regularizer=None,
                    biases_initializer=tf.compat.v1.zeros_initializer(), biases_regularizer=None, reuse=None,
                    variables_collections=None, outputs_collections=None, trainable=True, scope=None):
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
            "weights", [depth, num_outputs], dtype, weights_initializer, weights_regularizer,
            trainable=trainable, collections=collections)
        biases = None
        if normalizer_fn is None and biases_initializer is not None:
            biases = tf.compat.v1.get_variable(
                "biases", [num_outputs], dtype, biases_initializer, biases_regularizer,
                trainable=trainable, collections=collections)
        outputs = _affine(inputs, weights, biases)
        if normalizer_fn is not None:
            outputs = normalizer_fn(outputs, **(normalizer_params or {}))
        if activation_fn is not None:
            outputs = activation_fn(outputs)
        for collection in outputs_collections or []:
            tf.compat.v1.add_to_collection(collection, outputs)
        return outputs
