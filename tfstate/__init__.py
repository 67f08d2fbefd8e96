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

__version__ = "0.1.0"
