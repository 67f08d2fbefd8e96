"""Convert LSTM states between TF1's concatenated layout (`state_is_tuple=False`) and the tuple layout.

TF1 lays a concatenated LSTM state out as `[c, m]` along the last axis (c: num_units wide,
m: num_proj or num_units wide), and `MultiRNNCell(state_is_tuple=False)` concatenates its layers'
states in order. Both helpers work on tensors and NumPy arrays of any rank (per-timestep traces too).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfstate._checks import check_structure
from tfstate._types import StateNest, StateSize, StateValues
from tfstate.cells import CellWrapper, LSTMStateTuple, MultiRNNCell, ProjectedLSTMState, RNNCell


def tuple_layout(cell: RNNCell) -> StateSize:
    """The state sizes of `cell` in tuple layout: `LSTMStateTuple(c, h)` per LSTM, an int per other layer."""
    if isinstance(cell, CellWrapper):
        return tuple_layout(cell.cell)
    if isinstance(cell, MultiRNNCell):
        return tuple(tuple_layout(layer) for layer in cell.cells)
    if isinstance(cell, ProjectedLSTMState):  # LSTMCell, BasicLSTMCell and the LSTM variants
        return LSTMStateTuple(cell.num_units, cell.output_size)
    return cell.state_size


def state_to_tuple(state: StateNest | StateValues, cell: RNNCell) -> StateNest | StateValues:
    """Splits a concatenated state of `cell` into the tuple layout (a tuple-layout state passes through)."""
    layout = tuple_layout(cell)
    if tf.nest.is_nested(state):
        check_structure(layout, state, "The state given to state_to_tuple")
        return state
    widths = tf.nest.flatten(layout)
    given = state.shape[-1]
    if given is not None and given != sum(widths):
        raise ValueError(
            f"state_to_tuple: a concatenated state of this cell is {sum(widths)} wide "
            f"({' + '.join(map(str, widths))}); got width {given}."
        )
    parts, start = [], 0
    for width in widths:
        parts.append(state[..., start : start + width])
        start += width
    return tf.nest.pack_sequence_as(layout, parts)


def state_to_concat(state: StateNest | StateValues) -> tf.Tensor | np.ndarray:
    """Concatenates a tuple-layout state along the last axis, c before h in every layer (TF1's layout)."""
    parts = tf.nest.flatten(state)
    if all(isinstance(part, np.ndarray) for part in parts):
        return np.concatenate(parts, axis=-1)
    return tf.concat(parts, axis=-1)
