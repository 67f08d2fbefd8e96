"""TF1's `_linear`: `concat(args, 1) @ kernel + bias`, with `kernel` and `bias` in the current variable scope."""

import tensorflow as tf


def linear(args, output_size, bias, bias_initializer=None, kernel_initializer=None):
    """`concat(args, 1) @ kernel (+ bias)`: the projection of TF1's wrappers and legacy seq2seq decoders.

    Variables `kernel` `[sum of the args' depths, output_size]` and `bias` `[output_size]` (zeros
    unless `bias_initializer`) are got with `tf.compat.v1.get_variable` in the current variable
    scope, in the dtype of the first arg, exactly where TF1 put them; under reuse they are shared.

    Args:
      args: a 2-D tensor `[batch, n]` or a list of them, each with a known depth `n`.
      output_size: columns of the result.
      bias: whether to add a bias.
    """
    if not isinstance(args, (list, tuple)):
        args = [args]
    if not args:
        raise ValueError("linear needs at least one tensor to project; got an empty list.")
    args = [tf.convert_to_tensor(arg) for arg in args]
    shapes = [arg.shape for arg in args]
    if any(shape.rank != 2 or shape[1] is None for shape in shapes):
        raise ValueError(f"linear needs 2-D tensors [batch, depth] with known depths; got shapes {shapes}.")
    dtype = args[0].dtype.base_dtype
    kernel = tf.compat.v1.get_variable(
        "kernel", [sum(shape[1] for shape in shapes), output_size], dtype=dtype, initializer=kernel_initializer
    )
    result = tf.matmul(args[0] if len(args) == 1 else tf.concat(args, 1), kernel)
    if not bias:
        return result
    biases = tf.compat.v1.get_variable(
        "bias", [output_size], dtype=dtype, initializer=bias_initializer or tf.compat.v1.zeros_initializer()
    )
    return tf.nn.bias_add(result, biases)
