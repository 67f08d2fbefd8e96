"""TF1's sequence losses: weighted softmax cross-entropy over a list of per-step logits."""

import tensorflow as tf


def _check_lengths(logits, targets, weights, what):
    if not len(logits) == len(targets) == len(weights):
        raise ValueError(
            f"{what} needs one target and one weight per step of logits: got {len(logits)} logits, "
            f"{len(targets)} targets and {len(weights)} weights."
        )


def sequence_loss_by_example(
    logits, targets, weights, average_across_timesteps=True, softmax_loss_function=None, name=None
):
    """The weighted log-perplexity of each sequence in the batch (TF1's `sequence_loss_by_example`):

        loss[b] = sum_t weights[t][b] * crossent(logits[t][b], targets[t][b])
        if average_across_timesteps: loss[b] /= sum_t weights[t][b] + 1e-12

    Args:
      logits: list of `[batch, num_symbols]` tensors, one per step.
      targets: list of `[batch]` int tensors, as many as `logits`.
      weights: list of `[batch]` float tensors, as many as `logits` (0 masks padding).
      average_across_timesteps: divide by the total weight of each sequence.
      softmax_loss_function: `f(labels=..., logits=...) -> [batch]` used instead of the sparse
        softmax cross-entropy (e.g. a sampled softmax); called with keyword arguments, as in TF1.
      name: name scope, "sequence_loss_by_example" by default.

    Returns:
      A `[batch]` tensor.

    Raises:
      ValueError: the three lists differ in length.
    """
    logits, targets, weights = list(logits), list(targets), list(weights)
    _check_lengths(logits, targets, weights, "sequence_loss_by_example")
    with tf.compat.v1.name_scope(name, "sequence_loss_by_example", logits + targets + weights):
        per_step = []
        for logit, target, weight in zip(logits, targets, weights):
            if softmax_loss_function is None:
                # targets may come as [batch, 1] (or scalars), as TF1 allowed
                crossent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.reshape(target, [-1]), logits=logit)
            else:
                crossent = softmax_loss_function(labels=target, logits=logit)
            per_step.append(crossent * weight)
        log_perplexities = tf.add_n(per_step)
        if average_across_timesteps:
            log_perplexities /= tf.add_n(weights) + 1e-12  # 1e-12: all-zero weights give 0, not NaN
    return log_perplexities


def sequence_loss(
    logits,
    targets,
    weights,
    average_across_timesteps=True,
    average_across_batch=True,
    softmax_loss_function=None,
    name=None,
):
    """The batch's weighted log-perplexity (TF1's `sequence_loss`): the sum over the batch of
    `sequence_loss_by_example(...)`, divided by the batch size if `average_across_batch`.

    Arguments as in `sequence_loss_by_example`; `name` defaults to "sequence_loss". Returns a scalar.
    """
    logits, targets, weights = list(logits), list(targets), list(weights)
    _check_lengths(logits, targets, weights, "sequence_loss")
    with tf.compat.v1.name_scope(name, "sequence_loss", logits + targets + weights):
        cost = tf.reduce_sum(
            sequence_loss_by_example(
                logits,
                targets,
                weights,
                average_across_timesteps=average_across_timesteps,
                softmax_loss_function=softmax_loss_function,
            )
        )
        if not average_across_batch:
            return cost
        return cost / tf.cast(tf.shape(targets[0])[0], cost.dtype)
