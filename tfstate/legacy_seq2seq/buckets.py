"""TF1's `model_with_buckets`: one seq2seq model per (encoder length, decoder length) bucket, all sharing weights.

for j, (encoder_length, decoder_length) in enumerate(buckets):         # reuse for j > 0
    outputs[j], _ = seq2seq(encoder_inputs[:encoder_length], decoder_inputs[:decoder_length])
    losses[j] = sequence_loss(outputs[j], targets[:decoder_length], weights[:decoder_length])
"""

import tensorflow as tf

from tfstate._checks import require_graph_mode
from tfstate.legacy_seq2seq.losses import sequence_loss, sequence_loss_by_example


def _check_buckets(buckets, encoder_inputs, decoder_inputs, targets, weights):
    try:
        lengths = [(int(encoder_length), int(decoder_length)) for encoder_length, decoder_length in buckets]
    except (TypeError, ValueError):
        raise ValueError(
            f"model_with_buckets needs buckets as a list of (encoder length, decoder length) pairs; got {buckets!r}."
        ) from None
    if not lengths:
        raise ValueError("model_with_buckets needs at least one bucket; got an empty list.")
    longest_encoder = max(encoder_length for encoder_length, _ in lengths)
    longest_decoder = max(decoder_length for _, decoder_length in lengths)
    for what, inputs, needed in (
        ("encoder_inputs", encoder_inputs, longest_encoder),
        ("decoder_inputs", decoder_inputs, longest_decoder),
        ("targets", targets, longest_decoder),
        ("weights", weights, longest_decoder),
    ):
        if len(inputs) < needed:
            raise ValueError(
                f"model_with_buckets needs at least {needed} {what} (the longest bucket's length), "
                f"got {len(inputs)}. Make the input lists as long as the largest bucket."
            )


def model_with_buckets(
    encoder_inputs,
    decoder_inputs,
    targets,
    weights,
    buckets,
    seq2seq,
    softmax_loss_function=None,
    per_example_loss=False,
    name=None,
):
    """Builds `seq2seq` once per bucket over the first inputs of each list, with one set of weights (TF1's).

    The first bucket makes the variables; later ones are built under reuse and make none (a
    model deep-copying its cell, as `embedding_attention_seq2seq` does, gets an unbuilt copy that
    finds the same encoder weights again). Feed a batch to the bucket it fits and run that
    bucket's loss (or outputs).

    Args:
      encoder_inputs: list of tensors, at least as long as the longest bucket's encoder length.
      decoder_inputs: list of tensors, at least as long as the longest bucket's decoder length.
      targets: list of `[batch]` int tensors.
      weights: list of `[batch]` float tensors (0 masks).
      buckets: list of `(encoder length, decoder length)` pairs.
      seq2seq: `f(encoder_inputs, decoder_inputs) -> (outputs, state)`, e.g. a lambda over
        `embedding_attention_seq2seq`.
      softmax_loss_function: as in `sequence_loss`.
      per_example_loss: return `[batch]` losses (`sequence_loss_by_example`) instead of scalars.
      name: name scope, "model_with_buckets" by default.

    Returns:
      `(outputs, losses)`: per bucket, its list of outputs and its loss.

    Raises:
      ValueError: no buckets, or an input list shorter than the longest bucket needs.
    """
    require_graph_mode("tfstate.legacy_seq2seq.model_with_buckets")
    encoder_inputs, decoder_inputs = list(encoder_inputs), list(decoder_inputs)
    targets, weights = list(targets), list(weights)
    _check_buckets(buckets, encoder_inputs, decoder_inputs, targets, weights)
    loss = sequence_loss_by_example if per_example_loss else sequence_loss
    outputs, losses = [], []
    with tf.compat.v1.name_scope(name, "model_with_buckets", encoder_inputs + decoder_inputs + targets + weights):
        for j, (encoder_length, decoder_length) in enumerate(buckets):
            with tf.compat.v1.variable_scope(tf.compat.v1.get_variable_scope(), reuse=True if j > 0 else None):
                bucket_outputs, _ = seq2seq(encoder_inputs[:encoder_length], decoder_inputs[:decoder_length])
                outputs.append(bucket_outputs)
                losses.append(
                    loss(
                        bucket_outputs,
                        targets[:decoder_length],
                        weights[:decoder_length],
                        softmax_loss_function=softmax_loss_function,
                    )
                )
    return outputs, losses
