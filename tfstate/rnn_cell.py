"""The `tfstate.rnn_cell` namespace: a drop-in for `tf.compat.v1.nn.rnn_cell` / `tf.contrib.rnn`.

The fused cells of `tfstate.fused`, TF1 contrib's other cells and wrappers, the cuDNN-compatible
cells and the stacked bidirectional RNNs are here too, as `tf.contrib.rnn` had them.
"""

from tfstate.cells import (
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
from tfstate.contrib.cell_wrappers import AttentionCellWrapper, HighwayWrapper
from tfstate.contrib.conv_lstm import Conv1DLSTMCell, Conv2DLSTMCell, Conv3DLSTMCell, ConvLSTMCell
from tfstate.contrib.cudnn_compat import CudnnCompatibleGRUCell, CudnnCompatibleLSTMCell
from tfstate.contrib.fused_adaptors import FusedRNNCellAdaptor, TimeReversedFusedRNN
from tfstate.contrib.independent_rnn import IndRNNCell, IndyGRUCell, IndyLSTMCell
from tfstate.contrib.layer_norm import LayerNormBasicLSTMCell
from tfstate.contrib.light_gated_rnn import IntersectionRNNCell, SRUCell, UGRNNCell
from tfstate.contrib.lstm_variants import CoupledInputForgetGateLSTMCell, GLSTMCell, NASCell
from tfstate.contrib.phased_lstm import PhasedLSTMCell
from tfstate.contrib.projection_wrappers import (
    EmbeddingWrapper,
    InputProjectionWrapper,
    OutputProjectionWrapper,
)
from tfstate.contrib.stack_bidirectional import stack_bidirectional_dynamic_rnn, stack_bidirectional_rnn
from tfstate.fused import (
    FusedMultiRNNCell,
    GRUBlockCell,
    GRUBlockCellV2,
    LSTMBlockCell,
    LSTMBlockFusedCell,
)

__all__ = [
    "RNNCell",
    "LSTMStateTuple",
    "BasicRNNCell",
    "BasicLSTMCell",
    "LSTMCell",
    "GRUCell",
    "MultiRNNCell",
    "DropoutWrapper",
    "ResidualWrapper",
    "DeviceWrapper",
    "LSTMBlockCell",
    "LSTMBlockFusedCell",
    "FusedMultiRNNCell",
    "GRUBlockCell",
    "GRUBlockCellV2",
    "EmbeddingWrapper",
    "InputProjectionWrapper",
    "OutputProjectionWrapper",
    "FusedRNNCellAdaptor",
    "TimeReversedFusedRNN",
    "LayerNormBasicLSTMCell",
    "CoupledInputForgetGateLSTMCell",
    "GLSTMCell",
    "NASCell",
    "PhasedLSTMCell",
    "UGRNNCell",
    "IntersectionRNNCell",
    "SRUCell",
    "IndRNNCell",
    "IndyGRUCell",
    "IndyLSTMCell",
    "ConvLSTMCell",
    "Conv1DLSTMCell",
    "Conv2DLSTMCell",
    "Conv3DLSTMCell",
    "AttentionCellWrapper",
    "HighwayWrapper",
    "CudnnCompatibleLSTMCell",
    "CudnnCompatibleGRUCell",
    "stack_bidirectional_dynamic_rnn",
    "stack_bidirectional_rnn",
]
