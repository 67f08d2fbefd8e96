"""tfstate: TF1-style stateful RNN code, running correctly and fast on current TensorFlow."""

from tfstate import cudnn_rnn, layers, rnn_cell
from tfstate.cells import (
    BasicLSTMCell,
    BasicRNNCell,
    GRUCell,
    LSTMCell,
    LSTMStateTuple,
    MultiRNNCell,
    RNNCell,
)
from tfstate.generate import generate
from tfstate.layout import state_to_concat, state_to_tuple, tuple_layout
from tfstate.rnn import StatefulRNN, bidirectional_dynamic_rnn, dynamic_rnn, stateful_dynamic_rnn
from tfstate.session import StatefulSession
from tfstate.state import STATE_VARIABLES, RNNState
from tfstate.trace import StateTraceWrapper, dynamic_rnn_with_states

__version__ = "0.1.0"

__all__ = [
    "rnn_cell", "layers", "cudnn_rnn",
    "RNNCell", "LSTMStateTuple", "BasicRNNCell", "BasicLSTMCell", "LSTMCell", "GRUCell", "MultiRNNCell",
    "RNNState", "STATE_VARIABLES", "dynamic_rnn", "bidirectional_dynamic_rnn", "stateful_dynamic_rnn", "StatefulRNN", "StatefulSession",
    "StateTraceWrapper", "dynamic_rnn_with_states", "generate",
    "state_to_tuple", "state_to_concat", "tuple_layout",
]
