"""TF1 contrib's monotonic attention (Raffel et al. 2017): attention that only moves forward through the memory.

Each memory entry i is chosen with probability p_i = sigmoid(score_i + noise) (hard: score_i > 0);
from the previous alignments a', the new ones are

    q_i = (1 - p_{i-1}) q_{i-1} + a'_i,     a_i = p_i q_i                 (q_{-1} = 0)

computed by a scan ("recursive"), in closed form with cumulative sums and products ("parallel"),
or exactly for 0/1 probabilities ("hard"). The first step starts from a' = [1, 0, ..., 0].
"""

import functools

import numpy as np
import tensorflow as tf

from tfstate.layers import Dense
from tfstate.seq2seq.attention_wrapper import _bahdanau_score, _BaseAttentionMechanism, _luong_scale, _luong_score

_MODES = ("recursive", "parallel", "hard")


def safe_cumprod(x, *args, **kwargs):
    """`tf.math.cumprod` computed as `exp(cumsum(log(x)))`, with x clipped to [tiny, 1]: no underflow for small x."""
    with tf.name_scope("SafeCumprod"):
        x = tf.convert_to_tensor(x, name="x")
        tiny = np.finfo(x.dtype.as_numpy_dtype).tiny
        return tf.exp(tf.cumsum(tf.math.log(tf.clip_by_value(x, tiny, 1)), *args, **kwargs))


def monotonic_attention(p_choose_i, previous_attention, mode):
    """The monotonic alignments from choosing probabilities `[batch, memory_time]` and the previous alignments.

    `mode` is "recursive" (a scan, exact), "parallel" (cumulative sums and products, slightly inexact
    for probabilities near 0 or 1) or "hard" (probabilities must be 0 or 1).
    """
    p_choose_i = tf.convert_to_tensor(p_choose_i, name="p_choose_i")
    previous_attention = tf.convert_to_tensor(previous_attention, name="previous_attention")
    if mode == "recursive":
        batch_size = tf.compat.dimension_value(p_choose_i.shape[0]) or tf.shape(p_choose_i)[0]
        shifted_1mp = tf.concat([tf.ones([batch_size, 1], p_choose_i.dtype), 1 - p_choose_i[:, :-1]], 1)
        q = tf.scan(
            lambda q, step: tf.reshape(step[0] * q + step[1], [batch_size]),
            [tf.transpose(shifted_1mp), tf.transpose(previous_attention)],
            tf.zeros([batch_size], p_choose_i.dtype),
        )
        return p_choose_i * tf.transpose(q)
    if mode == "parallel":
        cumprod_1mp = safe_cumprod(1 - p_choose_i, axis=1, exclusive=True)
        return (
            p_choose_i * cumprod_1mp * tf.cumsum(previous_attention / tf.clip_by_value(cumprod_1mp, 1e-10, 1.0), axis=1)
        )
    if mode == "hard":
        p_choose_i *= tf.cumsum(previous_attention, axis=1)
        return p_choose_i * tf.math.cumprod(1 - p_choose_i, axis=1, exclusive=True)
    raise ValueError(f"monotonic_attention's mode must be one of {_MODES}; got {mode!r}.")


def _monotonic_probability_fn(score, previous_alignments, sigmoid_noise, mode, seed=None):
    """Score -> choosing probabilities (sigmoid of the noisy score; a step function when hard) -> alignments."""
    if sigmoid_noise > 0:
        score += sigmoid_noise * tf.random.normal(tf.shape(score), dtype=score.dtype, seed=seed)
    p_choose_i = tf.cast(score > 0, score.dtype) if mode == "hard" else tf.sigmoid(score)
    return monotonic_attention(p_choose_i, previous_alignments, mode)


class _BaseMonotonicAttentionMechanism(_BaseAttentionMechanism):
    """A mechanism whose alignments start at the first memory entry (`[1, 0, ..., 0]`), as monotonic attention needs."""

    def __init__(
        self,
        query_layer,
        memory,
        memory_sequence_length,
        score_mask_value,
        sigmoid_noise,
        sigmoid_noise_seed,
        score_bias_init,
        mode,
        dtype,
        name,
    ):
        if mode not in _MODES:
            raise ValueError(f"{type(self).__name__}'s mode must be one of {_MODES}; got {mode!r}.")
        self._score_bias_init = score_bias_init
        super().__init__(
            query_layer=query_layer,
            memory_layer=Dense(self._num_units, name="memory_layer", use_bias=False, dtype=dtype),
            memory=memory,
            memory_sequence_length=memory_sequence_length,
            score_mask_value=score_mask_value,
            probability_fn=functools.partial(
                _monotonic_probability_fn, sigmoid_noise=sigmoid_noise, mode=mode, seed=sigmoid_noise_seed
            ),
            name=name,
        )

    def initial_alignments(self, batch_size, dtype):
        return tf.one_hot(tf.zeros([batch_size], tf.int32), self._alignments_size, dtype=dtype)

    def _biased(self, score):
        """The score plus the learned scalar `attention_score_bias`."""
        return score + tf.compat.v1.get_variable(
            "attention_score_bias",
            shape=(),
            dtype=score.dtype,
            initializer=tf.compat.v1.constant_initializer(self._score_bias_init),
        )


class BahdanauMonotonicAttention(_BaseMonotonicAttentionMechanism):
    """Monotonic attention with Bahdanau's score (plus a learned scalar bias `attention_score_bias`)."""

    def __init__(
        self,
        num_units,
        memory,
        memory_sequence_length=None,
        normalize=False,
        score_mask_value=None,
        sigmoid_noise=0.0,
        sigmoid_noise_seed=None,
        score_bias_init=0.0,
        mode="parallel",
        dtype=None,
        name="BahdanauMonotonicAttention",
    ):
        dtype = dtype or tf.float32
        self._num_units = num_units
        self._normalize = normalize
        super().__init__(
            Dense(num_units, name="query_layer", use_bias=False, dtype=dtype),
            memory,
            memory_sequence_length,
            score_mask_value,
            sigmoid_noise,
            sigmoid_noise_seed,
            score_bias_init,
            mode,
            dtype,
            name,
        )

    def __call__(self, query, state):
        """Returns `(alignments, next_state)` from the query and the previous alignments (`state`)."""
        with tf.compat.v1.variable_scope(None, "bahdanau_monotonic_attention", [query]):
            score = self._biased(_bahdanau_score(self.query_layer(query), self._keys, self._num_units, self._normalize))
        alignments = self._probability_fn(score, state)
        return alignments, alignments


class LuongMonotonicAttention(_BaseMonotonicAttentionMechanism):
    """Monotonic attention with Luong's score (plus a learned scalar bias `attention_score_bias`)."""

    def __init__(
        self,
        num_units,
        memory,
        memory_sequence_length=None,
        scale=False,
        score_mask_value=None,
        sigmoid_noise=0.0,
        sigmoid_noise_seed=None,
        score_bias_init=0.0,
        mode="parallel",
        dtype=None,
        name="LuongMonotonicAttention",
    ):
        dtype = dtype or tf.float32
        self._num_units = num_units
        self._scale = scale
        super().__init__(
            None,
            memory,
            memory_sequence_length,
            score_mask_value,
            sigmoid_noise,
            sigmoid_noise_seed,
            score_bias_init,
            mode,
            dtype,
            name,
        )

    def __call__(self, query, state):
        """Returns `(alignments, next_state)` from the query and the previous alignments (`state`)."""
        with tf.compat.v1.variable_scope(None, "luong_monotonic_attention", [query]):
            score = self._biased(_luong_score(query, self._keys, _luong_scale(query, self._scale)))
        alignments = self._probability_fn(score, state)
        return alignments, alignments
