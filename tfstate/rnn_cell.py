"""The `tfstate.rnn_cell` namespace: a drop-in for `tf.compat.v1.nn.rnn_cell` / `tf.contrib.rnn`.

The fused cells of `tfstate.fused` are here too, as `tf.contrib.rnn` had them.
"""

from tfstate.cells import (  # noqa: F401
    BasicLSTMCell,
    BasicRNNCell,
    DeviceWrapper,
    DropoutWrapper,
    GRUCell,
    LSTMCell,
    LSTMStateTuple,
    MultiRNNCell,
    ResidualWrapper,
    RNNCell,
)
from tfstate.fused import (  # noqa: F401
    FusedMultiRNNCell,
    GRUBlockCell,
    GRUBlockCellV2,
    LSTMBlockCell,
    LSTMBlockFusedCell,
)
from tfstate.projection_wrappers import (  # noqa: F401
    EmbeddingWrapper,
    InputProjectionWrapper,
    OutputProjectionWrapper,
)

__all__ = [
    "RNNCell", "LSTMStateTuple", "BasicRNNCell", "BasicLSTMCell", "LSTMCell", "GRUCell",
    "MultiRNNCell", "DropoutWrapper", "ResidualWrapper", "DeviceWrapper",
    "LSTMBlockCell", "LSTMBlockFusedCell", "FusedMultiRNNCell", "GRUBlockCell", "GRUBlockCellV2",
    "EmbeddingWrapper", "InputProjectionWrapper", "OutputProjectionWrapper",
]
