"""TF1's `tf.contrib.rnn` cells, wrappers and functions beyond the core set, one family per module.

    layer_norm.py           LayerNormBasicLSTMCell (and the layer norm the LSTM variants share)
    lstm_variants.py        CoupledInputForgetGateLSTMCell, GLSTMCell, NASCell
    phased_lstm.py          PhasedLSTMCell
    conv_lstm.py            ConvLSTMCell, Conv1D/2D/3DLSTMCell
    independent_rnn.py      IndRNNCell, IndyGRUCell, IndyLSTMCell
    light_gated_rnn.py      UGRNNCell, IntersectionRNNCell, SRUCell
    cell_wrappers.py        AttentionCellWrapper, HighwayWrapper
    projection_wrappers.py  EmbeddingWrapper, InputProjectionWrapper, OutputProjectionWrapper
    fused_adaptors.py       FusedRNNCellAdaptor, TimeReversedFusedRNN
    cudnn_compat.py         CudnnCompatibleLSTMCell, CudnnCompatibleGRUCell
    stack_bidirectional.py  stack_bidirectional_dynamic_rnn, stack_bidirectional_rnn

Users reach them through `tfstate.rnn_cell` (as TF1 code reached them through `tf.contrib.rnn`).
"""
