"""TF1 contrib's `BasicDecoder`: a cell, an optional output layer and a helper, one step at a time.

output, state = cell(inputs, state)
output = output_layer(output)                       # e.g. Dense(vocab_size): logits
sample_id = helper.sample(output)
finished, inputs, state = helper.next_inputs(output, state, sample_id)
emits BasicDecoderOutput(rnn_output=output, sample_id=sample_id)
"""

import collections

import tensorflow as tf

from tfstate.seq2seq.decoder import Decoder
from tfstate.seq2seq.helper import Helper


class BasicDecoderOutput(collections.namedtuple("BasicDecoderOutput", ("rnn_output", "sample_id"))):
    """One step's (or, stacked, every step's) output of a `BasicDecoder`: the (projected) cell output and the id."""


def _check_cell(cell, owner):
    if not (callable(cell) and all(hasattr(cell, name) for name in ("state_size", "output_size", "zero_state"))):
        raise TypeError(
            f"{owner} needs an RNN cell (such as tfstate.rnn_cell.LSTMCell) as 'cell'; got {type(cell).__name__}."
        )


def _check_output_layer(layer, owner):
    if layer is not None and not (callable(layer) and hasattr(layer, "compute_output_shape")):
        raise TypeError(
            f"{owner} needs a layer such as tfstate.layers.Dense(vocab_size) as 'output_layer'; "
            f"got {type(layer).__name__}."
        )


def _rnn_output_size(cell, output_layer):
    """The cell's output size, or what the output layer makes of it (without the batch axis)."""
    size = cell.output_size
    if output_layer is None:
        return size
    with_batch = tf.nest.map_structure(lambda s: tf.TensorShape([None]).concatenate(s), size)
    return tf.nest.map_structure(lambda s: s[1:], output_layer.compute_output_shape(with_batch))


class BasicDecoder(Decoder):
    """Decodes with `cell` from `initial_state`, feeding what `helper` says; `output_layer` projects each output.

    Args:
      cell: an RNN cell (any tfstate cell, `AttentionWrapper`, `MultiRNNCell`, ...).
      helper: a `Helper` (`TrainingHelper`, `GreedyEmbeddingHelper`, ...).
      initial_state: the cell's initial state, e.g. the encoder's final state or `cell.zero_state(...)`.
      output_layer: optional layer applied to every output before sampling, e.g. `tfstate.layers.Dense(vocab_size)`;
        under `dynamic_decode` its variables are `decoder/dense/kernel` and `decoder/dense/bias`, as in TF1.
    """

    def __init__(self, cell, helper, initial_state, output_layer=None):
        _check_cell(cell, "BasicDecoder")
        if not isinstance(helper, Helper):
            raise TypeError(
                "BasicDecoder needs a tfstate.seq2seq Helper (TrainingHelper, GreedyEmbeddingHelper, "
                f"...) as 'helper'; got {type(helper).__name__}."
            )
        _check_output_layer(output_layer, "BasicDecoder")
        self._cell = cell
        self._helper = helper
        self._initial_state = initial_state
        self._output_layer = output_layer

    @property
    def batch_size(self):
        return self._helper.batch_size

    @property
    def output_size(self):
        return BasicDecoderOutput(
            rnn_output=_rnn_output_size(self._cell, self._output_layer), sample_id=self._helper.sample_ids_shape
        )

    @property
    def output_dtype(self):
        dtype = tf.nest.flatten(self._initial_state)[0].dtype
        rnn_output = tf.nest.map_structure(lambda _: dtype, _rnn_output_size(self._cell, self._output_layer))
        return BasicDecoderOutput(rnn_output, self._helper.sample_ids_dtype)

    def initialize(self, name=None):
        """Returns `(finished, first_inputs, initial_state)`."""
        return self._helper.initialize() + (self._initial_state,)

    def step(self, time, inputs, state, name=None):
        """Returns `(BasicDecoderOutput, next_state, next_inputs, finished)`."""
        with tf.name_scope(name or "BasicDecoderStep"):
            cell_outputs, cell_state = self._cell(inputs, state)
            if self._output_layer is not None:
                cell_outputs = self._output_layer(cell_outputs)
            sample_ids = self._helper.sample(time=time, outputs=cell_outputs, state=cell_state)
            finished, next_inputs, next_state = self._helper.next_inputs(
                time=time, outputs=cell_outputs, state=cell_state, sample_ids=sample_ids
            )
        return BasicDecoderOutput(cell_outputs, sample_ids), next_state, next_inputs, finished
