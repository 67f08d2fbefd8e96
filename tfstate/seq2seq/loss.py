"""TF1 contrib's `sequence_loss`: weighted cross-entropy of `[batch, time, classes]` logits, reduced as asked.

crossent[b, t] = weights[b, t] * -log softmax(logits[b, t])[targets[b, t]]
average_across_timesteps and average_across_batch:  sum(crossent) / sum(weights)          (the default)
sum_over_timesteps and sum_over_batch:              sum(crossent) / count_nonzero(weights)
otherwise one axis at most is reduced, the same two ways, to a [batch] or [time] result
(as in TF1, asking for an average over one axis and a sum over the other reduces the averaged axis only),
or nothing, leaving [batch, time]. Divisions by zero give zero.
"""

import tensorflow as tf

from tfstate._checks import require_graph_mode


def _check_rank(tensor, rank, what, shape_name):
    if tensor.shape.rank != rank:
        raise ValueError(f"sequence_loss needs {what} of shape {shape_name}; got shape {tensor.shape}.")


def sequence_loss(
    logits,
    targets,
    weights,
    average_across_timesteps=True,
    average_across_batch=True,
    sum_over_timesteps=False,
    sum_over_batch=False,
    softmax_loss_function=None,
    name=None,
):
    """Weighted cross-entropy loss for a sequence of logits (TF 1.15's `tf.contrib.seq2seq.sequence_loss`).

    Args:
      logits: `[batch, time, num_classes]` float logits.
      targets: `[batch, time]` int class ids.
      weights: `[batch, time]` float weights (e.g. a `tf.sequence_mask`).
      average_across_timesteps: average over time (see the module docstring for the reductions;
        an average and a sum over the same axis cannot both be asked for).
      average_across_batch: average over the batch.
      sum_over_timesteps: sum over time.
      sum_over_batch: sum over the batch.
      softmax_loss_function: `f(labels=, logits=)` -> per-row loss, replacing the sparse softmax cross-entropy.
      name: name scope, "sequence_loss" by default.

    Returns:
      A float tensor of rank 0, 1 or 2, depending on the reduction.
    """
    require_graph_mode("tfstate.seq2seq.sequence_loss")
    logits, targets, weights = (tf.convert_to_tensor(t) for t in (logits, targets, weights))
    _check_rank(logits, 3, "logits", "[batch, time, num_classes]")
    _check_rank(targets, 2, "targets", "[batch, time]")
    _check_rank(weights, 2, "weights", "[batch, time]")
    if average_across_timesteps and sum_over_timesteps:
        raise ValueError("sequence_loss: average_across_timesteps and sum_over_timesteps cannot both be True.")
    if average_across_batch and sum_over_batch:
        raise ValueError("sequence_loss: average_across_batch and sum_over_batch cannot both be True.")
    with tf.name_scope(name or "sequence_loss"):
        flat_logits = tf.reshape(logits, [-1, tf.shape(logits)[2]])
        flat_targets = tf.reshape(targets, [-1])
        if softmax_loss_function is None:
            crossent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=flat_targets, logits=flat_logits)
        else:
            crossent = softmax_loss_function(labels=flat_targets, logits=flat_logits)
        crossent *= tf.reshape(weights, [-1])
        if average_across_timesteps and average_across_batch:
            return tf.math.divide_no_nan(tf.reduce_sum(crossent), tf.reduce_sum(weights))
        if sum_over_timesteps and sum_over_batch:
            count = tf.cast(tf.math.count_nonzero(weights), crossent.dtype)
            return tf.math.divide_no_nan(tf.reduce_sum(crossent), count)
        crossent = tf.reshape(crossent, tf.shape(logits)[:2])
        if average_across_timesteps or average_across_batch:
            axis = [0] if average_across_batch else [1]
            return tf.math.divide_no_nan(tf.reduce_sum(crossent, axis), tf.reduce_sum(weights, axis))
        if sum_over_timesteps or sum_over_batch:
            axis = [0] if sum_over_batch else [1]
            count = tf.cast(tf.math.count_nonzero(weights, axis), crossent.dtype)
            return tf.math.divide_no_nan(tf.reduce_sum(crossent, axis), count)
        return crossent
