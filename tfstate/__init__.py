"""tfstate: TF1-style stateful RNN code, running correctly and fast on current TensorFlow."""

from tfstate import layers, rnn_cell
from tfstate.cells import (
    BasicLSTMCell,
    BasicRNNCell,
    GRUCell,
    LSTMCell,
    LSTMStateTuple,
    MultiRNNCell,
    RNNCell,
)
from tfstate.rnn import StatefulRNN, stateful_dynamic_rnn
from tfstate.session import StatefulSession
from tfstate.state import STATE_VARIABLES, RNNState

__version__ = "0.1.0"
