"""The `tfstate.rnn_cell` namespace: a drop-in for `tf.compat.v1.nn.rnn_cell` / `tf.contrib.rnn`.

The fused cells of `tfstate.fused`, TF1 contrib's other cells and wrappers, the cuDNN-compatible
cells and the stacked bidirectional RNNs are here too, as `tf.contrib.rnn` had them.
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
from tfstate.contrib.cell_wrappers import AttentionCellWrapper, HighwayWrapper  # noqa: F401
from tfstate.contrib.conv_lstm import Conv1DLSTMCell, Conv2DLSTMCell, Conv3DLSTMCell, ConvLSTMCell  # noqa: F401
from tfstate.contrib.cudnn_compat import CudnnCompatibleGRUCell, CudnnCompatibleLSTMCell  # noqa: F401
from tfstate.fused import (  # noqa: F401
    FusedMultiRNNCell,
    GRUBlockCell,
    GRUBlockCellV2,
    LSTMBlockCell,
    LSTMBlockFusedCell,
)
from tfstate.contrib.projection_wrappers import (  # noqa: F401
    EmbeddingWrapper,
    InputProjectionWrapper,
    OutputProjectionWrapper,
)
from tfstate.contrib.fused_adaptors import FusedRNNCellAdaptor, TimeReversedFusedRNN  # noqa: F401
from tfstate.contrib.independent_rnn import IndRNNCell, IndyGRUCell, IndyLSTMCell  # noqa: F401
from tfstate.contrib.layer_norm import LayerNormBasicLSTMCell  # noqa: F401
from tfstate.contrib.light_gated_rnn import IntersectionRNNCell, SRUCell, UGRNNCell  # noqa: F401
from tfstate.contrib.lstm_variants import CoupledInputForgetGateLSTMCell, GLSTMCell, NASCell  # noqa: F401
from tfstate.contrib.phased_lstm import PhasedLSTMCell  # noqa: F401
from tfstate.contrib.stack_bidirectional import stack_bidirectional_dynamic_rnn, stack_bidirectional_rnn  # noqa: F401

__all__ = [
    "RNNCell", "LSTMStateTuple", "BasicRNNCell", "BasicLSTMCell", "LSTMCell", "GRUCell",
    "MultiRNNCell", "DropoutWrapper", "ResidualWrapper", "DeviceWrapper",
    "LSTMBlockCell", "LSTMBlockFusedCell", "FusedMultiRNNCell", "GRUBlockCell", "GRUBlockCellV2",
    "EmbeddingWrapper", "InputProjectionWrapper", "OutputProjectionWrapper",
    "FusedRNNCellAdaptor", "TimeReversedFusedRNN",
    "LayerNormBasicLSTMCell", "CoupledInputForgetGateLSTMCell", "GLSTMCell", "NASCell", "PhasedLSTMCell",
    "UGRNNCell", "IntersectionRNNCell", "SRUCell", "IndRNNCell", "IndyGRUCell", "IndyLSTMCell",
    "ConvLSTMCell", "Conv1DLSTMCell", "Conv2DLSTMCell", "Conv3DLSTMCell",
    "AttentionCellWrapper", "HighwayWrapper", "CudnnCompatibleLSTMCell", "CudnnCompatibleGRUCell",
    "stack_bidirectional_dynamic_rnn", "stack_bidirectional_rnn",
]
