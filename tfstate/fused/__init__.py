"""`tfstate.fused`: TF1 contrib's fused RNN cells, with a whole-chunk fast path for the LSTMs and GRUs.

    lstm.py       LSTMBlockCell, LSTMBlockFusedCell: one-step kernel and `unroll` over a chunk
                  (compiled kernel, XLA, TF's BlockLSTM, or a loop; see tfstate.fused.lstm)
    sequence.py   the LSTM over a chunk as TF ops, and the explicit gradient every fast path shares
    stack.py      FusedMultiRNNCell: a stack of them, as one XLA cluster where it can
    gru.py        GRUBlockCellV2, GRUBlockCell on TensorFlow's GRUBlockCell kernel (and its gradient), and
                  the whole-chunk path of every GRU (compiled kernel, XLA, or a loop; GRUCell included)
    gru_sequence.py  the GRU over a chunk as TF ops, and its explicit gradient

All are also in `tfstate.rnn_cell`, as `tf.contrib.rnn` had them.
"""

from tfstate.fused.gru import GRUBlockCell, GRUBlockCellV2
from tfstate.fused.lstm import LSTMBlockCell, LSTMBlockFusedCell
from tfstate.fused.stack import FusedMultiRNNCell

__all__ = ["LSTMBlockCell", "LSTMBlockFusedCell", "FusedMultiRNNCell", "GRUBlockCell", "GRUBlockCellV2"]
