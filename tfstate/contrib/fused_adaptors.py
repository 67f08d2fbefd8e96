"""TF1 contrib's fused-RNN adaptors: `FusedRNNCellAdaptor` and `TimeReversedFusedRNN`.

A TF1 "fused RNN" runs a whole time-major sequence in one call, like `LSTMBlockFusedCell`:

    outputs, final_state = fused(inputs, initial_state=None, dtype=None, sequence_length=None, scope=None)
    # inputs [time, batch, depth] (or a list of [batch, depth]); outputs of the same kind

`FusedRNNCellAdaptor(cell)` gives any cell that interface (`tfstate.dynamic_rnn`, time-major, or
`static_rnn`); `TimeReversedFusedRNN(fused)` runs a fused RNN backwards over each row's valid steps
and returns its outputs in forward order: the backward half of a bidirectional RNN.
"""

import tensorflow as tf

from tfstate import _tf1
from tfstate._checks import require_graph_mode
from tfstate.rnn import dynamic_rnn


class FusedRNNCellAdaptor:
    """Runs `cell` over a whole time-major sequence per call, as TF1's adaptor did (variables in scope "rnn")."""

    def __init__(self, cell, use_dynamic_rnn=False):
        self._cell = cell
        self._use_dynamic_rnn = use_dynamic_rnn

    def __call__(self, inputs, initial_state=None, dtype=None, sequence_length=None, scope=None):
        require_graph_mode("FusedRNNCellAdaptor")
        is_list = isinstance(inputs, list)
        if self._use_dynamic_rnn:
            outputs, state = dynamic_rnn(
                self._cell,
                tf.stack(inputs) if is_list else inputs,
                sequence_length=sequence_length,
                initial_state=initial_state,
                dtype=dtype,
                time_major=True,
                scope=scope,
            )
            return (tf.unstack(outputs) if is_list else outputs), state
        outputs, state = _tf1.static_rnn(
            self._cell,
            inputs if is_list else tf.unstack(inputs),
            initial_state=initial_state,
            dtype=dtype,
            sequence_length=sequence_length,
            scope=scope,
        )
        return (outputs if is_list else tf.stack(outputs)), state


class TimeReversedFusedRNN:
    """Runs a fused RNN (`LSTMBlockFusedCell`, `FusedRNNCellAdaptor`, …) backwards in time.

    A tensor input is reversed within each row's `sequence_length` (all of it when None); a list
    input is reversed as a whole, as in TF1. The outputs come back in the inputs' order.
    """

    def __init__(self, cell):
        self._cell = cell

    @staticmethod
    def _reverse(values, lengths):
        if isinstance(values, list):
            return list(reversed(values))
        if lengths is None:
            return tf.reverse(values, [0])
        return tf.reverse_sequence(values, lengths, seq_axis=0, batch_axis=1)

    def __call__(self, inputs, initial_state=None, dtype=None, sequence_length=None, scope=None):
        require_graph_mode("TimeReversedFusedRNN")
        outputs, state = self._cell(
            self._reverse(inputs, sequence_length),
            initial_state=initial_state,
            dtype=dtype,
            sequence_length=sequence_length,
            scope=scope,
        )
        return self._reverse(outputs, sequence_length), state
