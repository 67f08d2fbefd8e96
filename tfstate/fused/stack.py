"""FusedMultiRNNCell: a `MultiRNNCell` whose `unroll` runs each layer's fused path or the stack as one XLA cluster.

When every layer is a fused LSTM on the XLA path:

    xs = inputs
    for layer in layers:                                # inside one tf.function(jit_compile=True)
        xs, final[layer] = layer's hoisted projection + static unroll over xs

with the explicit gradient of `sequence.sequence_gradient` taken layer by layer from the top.
"""

import functools

import tensorflow as tf

from tfstate import _tf1
from tfstate._checks import check_state, require_graph_mode
from tfstate.cells import LSTMStateTuple, MultiRNNCell
from tfstate.fused import sequence
from tfstate.fused.gru import unroll_of
from tfstate.fused.lstm import FusedLSTM
from tfstate.resets import stepped_with_resets, time_major_resets


def _resets_of(resets, reset_state):
    """The keyword arguments that pass one layer's resets on (none without resets)."""
    return {} if resets is None else dict(resets=resets, reset_state=reset_state)


def _forward(inputs, layers, lengths, resets, settings):
    """Every layer's `(outputs, cell states, c, h)` over time-major `inputs`.

    `layers` holds `(c0, h0, kernel, bias, peepholes, reset_state)` per layer (`reset_state` `(c, h)`, or `()`).
    """
    results, layer_input = [], inputs
    for (c0, h0, kernel, bias, peepholes, reset_state), layer_settings in zip(layers, settings):
        results.append(
            sequence.sequence(
                layer_input,
                c0,
                h0,
                kernel,
                bias,
                peepholes or None,
                lengths,
                time_major=True,
                **layer_settings,
                **_resets_of(resets, reset_state),
            )
        )
        layer_input = results[-1][0]
    return results


def _backward(inputs, layers, lengths, resets, results, d_outputs, d_finals, settings):
    """`sequence_gradient` layer by layer from the top: `(d_inputs, each layer's gradients in `layers`' flat order)`."""
    layer_inputs = [inputs] + [outputs for outputs, _, _, _ in results[:-1]]
    grads = [None] * len(results)
    for k in reversed(range(len(results))):
        c0, h0, kernel, bias, peepholes, reset_state = layers[k]
        outputs, cell_states, _, _ = results[k]
        d_c, d_h = d_finals[k]
        d_inputs, d_c0, d_h0, d_kernel, d_bias, *rest = sequence.sequence_gradient(
            layer_inputs[k],
            c0,
            h0,
            kernel,
            bias,
            peepholes or None,
            lengths,
            outputs,
            cell_states,
            (d_outputs, d_c, d_h),
            time_major=True,
            **settings[k],
            **_resets_of(resets, reset_state),
        )
        d_reset, d_peepholes = (rest[:2], rest[2:]) if resets is not None else ([], rest)
        # in the order tf.nest.flatten gives a layer's (c0, h0, kernel, bias, peepholes, reset_state)
        d_outputs, grads[k] = d_inputs, [d_c0, d_h0, d_kernel, d_bias, *d_peepholes, *d_reset]
    return d_outputs, [grad for layer_grads in grads for grad in layer_grads]


def _one_cluster(inputs, layers, lengths, resets, time_major, settings):
    """`(outputs, [(c, h) per layer])` of the stack in one compiled call, differentiable by `_backward`."""
    forward = tf.function(functools.partial(_forward, settings=settings), jit_compile=True, autograph=False)

    @tf.custom_gradient
    def stack(inputs, *flat_layers):  # an explicit gradient, for the reason given in sequence.with_gradient
        inputs = inputs if time_major else tf.transpose(inputs, [1, 0, 2])
        unpacked = tf.nest.pack_sequence_as(layers, flat_layers)
        results = forward(inputs, unpacked, lengths, resets)
        outputs = results[-1][0] if time_major else tf.transpose(results[-1][0], [1, 0, 2])
        finals = [(c, h) for _, _, c, h in results]

        def gradient(*upstream):
            d_outputs, *d_finals = sequence.zeros_where_none(upstream, [outputs] + tf.nest.flatten(finals))
            if not time_major:
                d_outputs = tf.transpose(d_outputs, [1, 0, 2])
            d_inputs, d_layers = _backward(
                inputs,
                unpacked,
                lengths,
                resets,
                results,
                d_outputs,
                tf.nest.pack_sequence_as(finals, d_finals),
                settings,
            )
            return [d_inputs if time_major else tf.transpose(d_inputs, [1, 0, 2])] + d_layers

        return (outputs, finals), gradient

    return stack(inputs, *tf.nest.flatten(layers))


class FusedMultiRNNCell(MultiRNNCell):
    """`MultiRNNCell` of fused cells whose `unroll` unrolls each layer with its fused path.

    Variables are those of `MultiRNNCell` (`multi_rnn_cell/cell_0/lstm_cell/kernel`, ...). When
    every layer is a fused LSTM on the XLA path, the whole stack is one XLA cluster (see the module
    docstring); otherwise each layer is unrolled on its own: fused layers (and GRUCells, see
    `tfstate.fused.gru.unroll_of`) over the whole chunk, others with `tf.compat.v1.nn.dynamic_rnn`.
    """

    def unroll(self, inputs, initial_state, sequence_length=None, time_major=False, resets=None, reset_state=None):
        """Runs the stack over a whole chunk: `(outputs, final_state)`, like `dynamic_rnn` (see `FusedLSTM.unroll`).

        With `resets`, every layer of a marked row starts that step from its part of `reset_state`
        (a state of the stack; zeros by default).
        """
        if not self._state_is_tuple:
            raise ValueError(
                "FusedMultiRNNCell.unroll runs each layer's state as a tuple, so it needs "
                "state_is_tuple=True (the default); got state_is_tuple=False. Build the stack with "
                "state_is_tuple=True, and use tfstate.state_to_concat where a concatenated state is needed."
            )
        require_graph_mode("FusedMultiRNNCell.unroll")
        inputs = tf.convert_to_tensor(inputs)
        check_state(self.state_size, initial_state, "The initial state given to FusedMultiRNNCell.unroll")
        who = "FusedMultiRNNCell.unroll"
        lengths = sequence.sequence_lengths(sequence_length, inputs, time_major, who)
        if resets is not None:
            if reset_state is None:
                reset_state = self.zero_state(
                    tf.shape(inputs)[1 if time_major else 0], tf.nest.flatten(initial_state)[0].dtype
                )
            check_state(self.state_size, reset_state, f"The reset_state given to {who}")
        one_cluster = inputs.shape.rank == 3 and all(
            isinstance(cell, FusedLSTM) and cell.implementation_for(inputs, time_major, resets is not None) == "xla"
            for cell in self._cells
        )
        with self._first_use():
            if one_cluster:
                layer_resets = None if resets is None else time_major_resets(resets, inputs, time_major, who)
                return self._unroll_one_cluster(inputs, initial_state, lengths, layer_resets, reset_state, time_major)
            layer_input, final_states = inputs, []
            for index, (cell, state) in enumerate(zip(self._cells, initial_state)):
                layer_resets = {} if resets is None else dict(resets=resets, reset_state=reset_state[index])
                with tf.compat.v1.variable_scope(f"cell_{index}"):
                    unroll = unroll_of(cell, layer_input.dtype)
                    if unroll is not None:
                        layer_input, final = unroll(
                            layer_input, state, sequence_length=lengths, time_major=time_major, **layer_resets
                        )
                    elif resets is not None:
                        layer_input, final = stepped_with_resets(
                            cell,
                            layer_input,
                            resets,
                            reset_state[index],
                            state,
                            lengths,
                            time_major,
                            scope=tf.compat.v1.get_variable_scope(),
                        )
                    else:  # in this layer's scope itself, not dynamic_rnn's default "rnn" below it
                        layer_input, final = _tf1.dynamic_rnn(
                            cell,
                            layer_input,
                            sequence_length=lengths,
                            initial_state=state,
                            time_major=time_major,
                            scope=tf.compat.v1.get_variable_scope(),
                        )
                final_states.append(final)
        return layer_input, tuple(final_states)

    def _unroll_one_cluster(self, inputs, initial_state, lengths, resets, reset_state, time_major):
        """All layers' hoisted projections and static unrolls in one `tf.function(jit_compile=True)`."""
        depth, layers, settings = inputs.shape[-1], [], []
        for index, (cell, (c0, h0)) in enumerate(zip(self._cells, initial_state)):
            with tf.compat.v1.variable_scope(f"cell_{index}"):
                cell.ensure_built(inputs, depth=depth)
            (kernel, bias, peepholes), layer_settings = cell.sequence_arguments()
            layer_reset = () if resets is None else tuple(reset_state[index])
            layers.append((c0, h0, kernel, bias, peepholes or (), layer_reset))
            settings.append(layer_settings)
            depth = cell.output_size
        with tf.name_scope("FusedMultiRNNCellUnroll"):
            outputs, finals = _one_cluster(inputs, layers, lengths, resets, time_major, settings)
        return outputs, tuple(LSTMStateTuple(c, h) for c, h in finals)
