"""TF1 contrib's `gather_tree`: whole beams from per-step ids and parent pointers (TF1 ran a C++ kernel).

For each batch row b and final beam w, walking back from the last valid step:

    L = min(max_time, max_sequence_lengths[b]);  parent = w
    for t = L-1 down to 0:
        beams[t, b, w] = step_ids[t, b, parent];  parent = parent_ids[t, b, parent]
    beams[t >= L] = end_token, and every step after a beam's first end_token is end_token too.
"""

import tensorflow as tf

from tfstate._checks import require_graph_mode


def gather_tree(step_ids, parent_ids, max_sequence_lengths, end_token, name=None):
    """Follows `parent_ids` back from the last step to spell out every final beam.

    Args:
      step_ids: int32 `[max_time, batch, beam_width]`, the id chosen at each step.
      parent_ids: int32 `[max_time, batch, beam_width]`, the beam each step's choice extended.
      max_sequence_lengths: int32 `[batch]`, how many steps of each row to follow.
      end_token: int32 scalar.

    Returns:
      int32 `[max_time, batch, beam_width]`: the ids of each final beam, end_token-padded.
    """
    require_graph_mode("tfstate.seq2seq.gather_tree")
    with tf.name_scope(name or "GatherTree"):
        step_ids = tf.convert_to_tensor(step_ids, tf.int32, name="step_ids")
        parent_ids = tf.convert_to_tensor(parent_ids, tf.int32, name="parent_ids")
        max_sequence_lengths = tf.convert_to_tensor(max_sequence_lengths, tf.int32, name="max_sequence_lengths")
        end_token = tf.convert_to_tensor(end_token, tf.int32, name="end_token")
        if step_ids.shape.rank != 3 or not step_ids.shape.is_compatible_with(parent_ids.shape):
            raise ValueError(
                "gather_tree needs step_ids and parent_ids of the same shape [max_time, batch, "
                f"beam_width]; got {step_ids.shape} and {parent_ids.shape}."
            )
        if max_sequence_lengths.shape.rank != 1 or end_token.shape.rank != 0:
            raise ValueError(
                "gather_tree needs max_sequence_lengths of shape [batch] and a scalar end_token; got "
                f"shapes {max_sequence_lengths.shape} and {end_token.shape}."
            )
        max_time, beam_width = tf.shape(step_ids)[0], tf.shape(step_ids)[2]
        lengths = tf.minimum(max_time, max_sequence_lengths)[:, tf.newaxis]
        in_range = tf.logical_and(parent_ids >= 0, parent_ids < beam_width)
        valid = tf.sequence_mask(lengths[:, 0], max_time)  # [batch, max_time]
        checked = tf.debugging.Assert(
            tf.reduce_all(in_range | tf.logical_not(tf.transpose(valid)[:, :, tf.newaxis])),
            [
                "gather_tree: every parent id within max_sequence_lengths must be in [0, beam_width); beam_width is",
                beam_width,
                "and the parent ids range over",
                tf.reduce_min(parent_ids),
                tf.reduce_max(parent_ids),
            ],
        )
        identity = tf.broadcast_to(tf.range(beam_width), tf.shape(step_ids)[1:])

        def back(parent, step):
            time, ids, parents = step
            active = time < lengths
            token = tf.where(active, tf.gather(ids, parent, batch_dims=1), end_token)
            return tf.where(active, tf.gather(parents, parent, batch_dims=1), parent), token

        with tf.control_dependencies([checked]):
            times = tf.range(max_time)
        _, beams = tf.scan(
            lambda carry, step: back(carry[0], step),
            (times, step_ids, parent_ids),
            initializer=(identity, identity),
            reverse=True,
        )
        ended_before = tf.cumsum(tf.cast(tf.equal(beams, end_token), tf.int32), axis=0, exclusive=True) > 0
        return tf.where(ended_before, end_token, beams)
