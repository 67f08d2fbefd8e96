"""TF1 contrib's decoding helpers: what a `BasicDecoder` feeds its cell and when a row is finished.

A helper answers three questions for the decoder, one step at a time:

    finished, inputs = helper.initialize()
    sample_ids = helper.sample(time, outputs, state)                      # e.g. argmax(outputs)
    finished, next_inputs, state = helper.next_inputs(time, outputs, state, sample_ids)

`TrainingHelper` feeds the given sequence (teacher forcing); `GreedyEmbeddingHelper` feeds the
embedding of the argmax and finishes a row at `end_token`; `SampleEmbeddingHelper` samples instead;
`ScheduledEmbeddingTrainingHelper` and `ScheduledOutputTrainingHelper` mix the given inputs with the
embeddings of sampled ids or with the outputs themselves; `InferenceHelper` and `CustomHelper` take functions.
"""

import abc

import tensorflow as tf

from tfstate.seq2seq.decoder import _transpose_batch_time


def _embedding_function(embedding):
    """A callable embedding as it is, or `params` for `tf.nn.embedding_lookup`."""
    if callable(embedding):
        return embedding
    return lambda ids: tf.nn.embedding_lookup(embedding, ids)


def _unstack_time(inputs):
    """A time-major tensor as a TensorArray of its steps."""
    return tf.TensorArray(inputs.dtype, size=tf.shape(inputs)[0], element_shape=inputs.shape[1:]).unstack(inputs)


def _start_and_end_tokens(start_tokens, end_token, owner):
    """`start_tokens` as int32 `[batch]` and `end_token` as an int32 scalar, or a ValueError naming the shapes."""
    start_tokens = tf.convert_to_tensor(start_tokens, tf.int32, name="start_tokens")
    end_token = tf.convert_to_tensor(end_token, tf.int32, name="end_token")
    if start_tokens.shape.rank != 1:
        raise ValueError(f"{owner} needs start_tokens of shape [batch]; got shape {start_tokens.shape}.")
    if end_token.shape.rank != 0:
        raise ValueError(f"{owner} needs a scalar end_token; got shape {end_token.shape}.")
    return start_tokens, end_token


def _check_logits(outputs, helper):
    if not isinstance(outputs, tf.Tensor):
        raise TypeError(
            f"{helper} samples from the decoder's outputs as logits, so they must be one Tensor; "
            f"got {type(outputs).__name__}."
        )


class Helper(abc.ABC):
    """Interface of the helpers `BasicDecoder` uses (TF1's): batch size, sample ids, initialize, sample, next inputs."""

    @property
    @abc.abstractmethod
    def batch_size(self):
        """Rows per step (an int32 scalar)."""

    @property
    @abc.abstractmethod
    def sample_ids_shape(self):
        """Shape of one row's sample id (a TensorShape, usually scalar)."""

    @property
    @abc.abstractmethod
    def sample_ids_dtype(self):
        """Dtype of the sample ids."""

    @abc.abstractmethod
    def initialize(self, name=None):
        """Returns `(initial_finished, initial_inputs)`."""

    @abc.abstractmethod
    def sample(self, time, outputs, state, name=None):
        """Returns `sample_ids`."""

    @abc.abstractmethod
    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        """Returns `(finished, next_inputs, next_state)`."""


class _ScalarIdHelper(Helper):
    """A helper of `_batch_size` rows whose sample ids are one int32 per row."""

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def sample_ids_shape(self):
        return tf.TensorShape([])

    @property
    def sample_ids_dtype(self):
        return tf.int32


class CustomHelper(Helper):
    """A helper made of three functions: `initialize_fn()`, `sample_fn(time, outputs, state)`,
    `next_inputs_fn(time, outputs, state, sample_ids)`; the batch size is that of the first `finished`."""

    def __init__(self, initialize_fn, sample_fn, next_inputs_fn, sample_ids_shape=None, sample_ids_dtype=None):
        self._initialize_fn = initialize_fn
        self._sample_fn = sample_fn
        self._next_inputs_fn = next_inputs_fn
        self._batch_size = None
        self._sample_ids_shape = tf.TensorShape(sample_ids_shape or [])
        self._sample_ids_dtype = sample_ids_dtype or tf.int32

    @property
    def batch_size(self):
        if self._batch_size is None:
            raise ValueError("CustomHelper.batch_size is known only after initialize() has been called.")
        return self._batch_size

    @property
    def sample_ids_shape(self):
        return self._sample_ids_shape

    @property
    def sample_ids_dtype(self):
        return self._sample_ids_dtype

    def initialize(self, name=None):
        finished, next_inputs = self._initialize_fn()
        if self._batch_size is None:
            self._batch_size = tf.size(finished)
        return finished, next_inputs

    def sample(self, time, outputs, state, name=None):
        return self._sample_fn(time=time, outputs=outputs, state=state)

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        return self._next_inputs_fn(time=time, outputs=outputs, state=state, sample_ids=sample_ids)


class TrainingHelper(_ScalarIdHelper):
    """Teacher forcing: step t reads `inputs[:, t]`; a row is finished once `t + 1 >= sequence_length`.

    The sample ids are the argmax of the outputs (for monitoring; they do not feed back).
    """

    def __init__(self, inputs, sequence_length, time_major=False, name=None):
        with tf.name_scope(name or "TrainingHelper"):
            inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
            if not time_major:
                inputs = tf.nest.map_structure(_transpose_batch_time, inputs)
            self._input_tas = tf.nest.map_structure(_unstack_time, inputs)
            self._sequence_length = tf.convert_to_tensor(sequence_length, name="sequence_length")
            if self._sequence_length.shape.rank != 1:
                raise ValueError(
                    f"TrainingHelper needs sequence_length of shape [batch]; got shape {self._sequence_length.shape}."
                )
            self._sequence_length = tf.cast(self._sequence_length, tf.int32)
            self._zero_inputs = tf.nest.map_structure(lambda step: tf.zeros_like(step[0]), inputs)
            self._batch_size = tf.size(self._sequence_length)

    def _read(self, time, finished):
        """Inputs at `time`, or zeros once every row is finished (the arrays may be shorter then)."""
        return tf.cond(
            tf.reduce_all(finished),
            lambda: self._zero_inputs,
            lambda: tf.nest.map_structure(lambda ta: ta.read(time), self._input_tas),
        )

    def initialize(self, name=None):
        finished = tf.equal(0, self._sequence_length)
        return finished, self._read(0, finished)

    def sample(self, time, outputs, name=None, **unused_kwargs):
        return tf.argmax(outputs, axis=-1, output_type=tf.int32)

    def next_inputs(self, time, outputs, state, name=None, **unused_kwargs):
        next_time = time + 1
        finished = next_time >= self._sequence_length
        return finished, self._read(next_time, finished), state


class ScheduledEmbeddingTrainingHelper(TrainingHelper):
    """Scheduled sampling: with probability `sampling_probability` a row's next input is the embedding of
    an id sampled from its outputs (as logits) instead of the given input. Sample id -1 marks a row not sampled.
    """

    def __init__(
        self,
        inputs,
        sequence_length,
        embedding,
        sampling_probability,
        time_major=False,
        seed=None,
        scheduling_seed=None,
        name=None,
    ):
        self._embedding_fn = _embedding_function(embedding)
        self._sampling_probability = tf.convert_to_tensor(sampling_probability, name="sampling_probability")
        if self._sampling_probability.shape.rank not in (0, 1):
            raise ValueError(
                "ScheduledEmbeddingTrainingHelper needs a scalar or [batch] sampling_probability; "
                f"got shape {self._sampling_probability.shape}."
            )
        self._seed = seed
        self._scheduling_seed = scheduling_seed
        super().__init__(
            inputs, sequence_length, time_major=time_major, name=name or "ScheduledEmbeddingSamplingWrapper"
        )

    def sample(self, time, outputs, state, name=None):
        _check_logits(outputs, "ScheduledEmbeddingTrainingHelper")
        uniform = tf.random.uniform(
            [self.batch_size], seed=self._scheduling_seed, dtype=self._sampling_probability.dtype
        )
        sampled = tf.random.categorical(outputs, 1, dtype=tf.int32, seed=self._seed)[:, 0]
        return tf.where(uniform < self._sampling_probability, sampled, tf.fill([self.batch_size], -1))

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        finished, given_inputs, state = super().next_inputs(time, outputs, state)

        def mix():
            sampled_rows = tf.cast(tf.where(sample_ids > -1), tf.int32)
            given_rows = tf.cast(tf.where(sample_ids <= -1), tf.int32)
            shape = tf.shape(given_inputs)
            sampled = self._embedding_fn(tf.gather_nd(sample_ids, sampled_rows))
            return tf.scatter_nd(sampled_rows, sampled, shape) + tf.scatter_nd(
                given_rows, tf.gather_nd(given_inputs, given_rows), shape
            )

        return finished, tf.cond(tf.reduce_all(finished), lambda: given_inputs, mix), state


class ScheduledOutputTrainingHelper(TrainingHelper):
    """Scheduled sampling on outputs: with probability `sampling_probability` a row's next input is its own
    output (through `next_inputs_fn` if given, then with the step's `auxiliary_inputs` appended) instead of
    the given input. Sample id 1 marks a row that was fed its output.
    """

    def __init__(
        self,
        inputs,
        sequence_length,
        sampling_probability,
        time_major=False,
        seed=None,
        next_inputs_fn=None,
        auxiliary_inputs=None,
        name=None,
    ):
        self._sampling_probability = tf.convert_to_tensor(sampling_probability, name="sampling_probability")
        if self._sampling_probability.shape.rank not in (0, 1):
            raise ValueError(
                "ScheduledOutputTrainingHelper needs a scalar or [batch] sampling_probability; "
                f"got shape {self._sampling_probability.shape}."
            )
        self._auxiliary_input_tas = None
        if auxiliary_inputs is not None:
            auxiliary_inputs = tf.nest.map_structure(tf.convert_to_tensor, auxiliary_inputs)
            inputs = tf.nest.map_structure(lambda x, y: tf.concat([x, y], -1), inputs, auxiliary_inputs)
            if not time_major:
                auxiliary_inputs = tf.nest.map_structure(_transpose_batch_time, auxiliary_inputs)
            self._auxiliary_input_tas = tf.nest.map_structure(_unstack_time, auxiliary_inputs)
        self._seed = seed
        self._next_inputs_fn = next_inputs_fn
        super().__init__(inputs, sequence_length, time_major=time_major, name=name or "ScheduledOutputTrainingHelper")

    def sample(self, time, outputs, state, name=None):
        uniform = tf.random.uniform([self.batch_size], seed=self._seed, dtype=self._sampling_probability.dtype)
        return tf.cast(uniform < self._sampling_probability, tf.int32)

    def _with_auxiliary_inputs(self, time, outputs, rows=None):
        """`outputs` with the auxiliary inputs of step `time + 1` (of `rows` only, if given) appended."""
        if self._auxiliary_input_tas is None:
            return outputs
        auxiliary = tf.nest.map_structure(lambda ta: ta.read(time + 1), self._auxiliary_input_tas)
        if rows is not None:
            auxiliary = tf.nest.map_structure(lambda x: tf.gather_nd(x, rows), auxiliary)
        return tf.nest.map_structure(lambda x, y: tf.concat([x, y], -1), outputs, auxiliary)

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        finished, given_inputs, state = super().next_inputs(time, outputs, state)
        sampled = tf.cast(sample_ids, tf.bool)

        def mix():
            if self._next_inputs_fn is None:
                return tf.where(sampled[:, tf.newaxis], self._with_auxiliary_inputs(time, outputs), given_inputs)
            sampled_rows = tf.cast(tf.where(sampled), tf.int32)
            given_rows = tf.cast(tf.where(tf.logical_not(sampled)), tf.int32)
            fed_back = self._with_auxiliary_inputs(
                time, self._next_inputs_fn(tf.gather_nd(outputs, sampled_rows)), sampled_rows
            )
            shape = tf.shape(given_inputs)
            return tf.scatter_nd(sampled_rows, fed_back, shape) + tf.scatter_nd(
                given_rows, tf.gather_nd(given_inputs, given_rows), shape
            )

        keep_given = tf.logical_or(tf.reduce_all(finished), tf.logical_not(tf.reduce_any(sampled)))
        return finished, tf.cond(keep_given, lambda: given_inputs, mix), state


class GreedyEmbeddingHelper(_ScalarIdHelper):
    """Inference: the next input is the embedding of `argmax(outputs)`; a row is finished when that is `end_token`.

    Args:
      embedding: a callable `ids -> inputs`, or the `params` of `tf.nn.embedding_lookup`.
      start_tokens: int32 `[batch]`, the first step's ids.
      end_token: int32 scalar.
    """

    def __init__(self, embedding, start_tokens, end_token):
        self._embedding_fn = _embedding_function(embedding)
        self._start_tokens, self._end_token = _start_and_end_tokens(start_tokens, end_token, type(self).__name__)
        self._batch_size = tf.size(self._start_tokens)
        self._start_inputs = self._embedding_fn(self._start_tokens)

    def initialize(self, name=None):
        return tf.fill([self._batch_size], False), self._start_inputs

    def sample(self, time, outputs, state, name=None):
        _check_logits(outputs, type(self).__name__)
        return tf.argmax(outputs, axis=-1, output_type=tf.int32)

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        finished = tf.equal(sample_ids, self._end_token)
        next_inputs = tf.cond(
            tf.reduce_all(finished), lambda: self._start_inputs, lambda: self._embedding_fn(sample_ids)
        )
        return finished, next_inputs, state


class SampleEmbeddingHelper(GreedyEmbeddingHelper):
    """Like `GreedyEmbeddingHelper`, but the next id is sampled from `softmax(outputs / softmax_temperature)`."""

    def __init__(self, embedding, start_tokens, end_token, softmax_temperature=None, seed=None):
        super().__init__(embedding, start_tokens, end_token)
        self._softmax_temperature = softmax_temperature
        self._seed = seed

    def sample(self, time, outputs, state, name=None):
        _check_logits(outputs, type(self).__name__)
        logits = outputs if self._softmax_temperature is None else outputs / self._softmax_temperature
        return tf.random.categorical(logits, 1, dtype=tf.int32, seed=self._seed)[:, 0]


class InferenceHelper(Helper):
    """Inference with your own functions: `sample_fn(outputs) -> sample_ids`, `end_fn(sample_ids) -> finished`
    and `next_inputs_fn(sample_ids) -> inputs` (the sample ids themselves when not given)."""

    def __init__(self, sample_fn, sample_shape, sample_dtype, start_inputs, end_fn, next_inputs_fn=None):
        self._sample_fn = sample_fn
        self._end_fn = end_fn
        self._sample_shape = tf.TensorShape(sample_shape)
        self._sample_dtype = sample_dtype
        self._next_inputs_fn = next_inputs_fn
        self._start_inputs = tf.convert_to_tensor(start_inputs, name="start_inputs")
        self._batch_size = tf.shape(self._start_inputs)[0]

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def sample_ids_shape(self):
        return self._sample_shape

    @property
    def sample_ids_dtype(self):
        return self._sample_dtype

    def initialize(self, name=None):
        return tf.fill([self._batch_size], False), self._start_inputs

    def sample(self, time, outputs, state, name=None):
        return self._sample_fn(outputs)

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        next_inputs = sample_ids if self._next_inputs_fn is None else self._next_inputs_fn(sample_ids)
        return self._end_fn(sample_ids), next_inputs, state
