"""TF1's plain RNN decoders: `rnn_decoder` (with a `loop_function` to feed outputs back) and `embedding_rnn_decoder`.

state = initial_state
for i, input in enumerate(decoder_inputs):
    if loop_function and i > 0: input = loop_function(outputs[i - 1], i)     # e.g. greedy decoding
    outputs[i], state = cell(input, state)
"""

import tensorflow as tf

from tfstate._checks import require_graph_mode


def _greedy_loop_function(embedding, output_projection=None, update_embedding=True):
    """The loop function of greedy decoding (TF1's private `_extract_argmax_and_embed`):

        next_input = embedding[argmax(prev @ W + B)]        (W, B = output_projection, when given)

    With `update_embedding=False` no gradient reaches the embedding through the fed-back symbols.
    """

    def loop_function(prev, _):
        if output_projection is not None:
            prev = tf.nn.bias_add(tf.matmul(prev, output_projection[0]), output_projection[1])
        embedded = tf.nn.embedding_lookup(embedding, tf.argmax(prev, 1))
        return embedded if update_embedding else tf.stop_gradient(embedded)

    return loop_function


def _check_output_projection(output_projection, num_symbols, dtype, what):
    """`(W, B)` as tensors of `dtype`, after checking W is `[output_size, num_symbols]` and B `[num_symbols]`."""
    try:
        weights, biases = output_projection
    except (TypeError, ValueError):
        raise ValueError(f"{what} needs output_projection as a pair (W, B); got {output_projection!r}.") from None
    weights = tf.convert_to_tensor(weights, dtype=dtype)
    biases = tf.convert_to_tensor(biases, dtype=dtype)
    if not (weights.shape.is_compatible_with([None, num_symbols]) and biases.shape.is_compatible_with([num_symbols])):
        raise ValueError(
            f"{what} needs output_projection (W, B) with W of shape [output_size, {num_symbols}] and B "
            f"of shape [{num_symbols}] (num_symbols={num_symbols}); got W {weights.shape} and "
            f"B {biases.shape}."
        )
    return weights, biases


def _decoder_embedding(num_symbols, embedding_size, output_projection, feed_previous, update_embedding, what):
    """The variable `embedding` in the current scope and, when `feed_previous`, the greedy loop function over it."""
    if output_projection is not None:
        output_projection = _check_output_projection(
            output_projection, num_symbols, tf.compat.v1.get_variable_scope().dtype, what
        )
    embedding = tf.compat.v1.get_variable("embedding", [num_symbols, embedding_size])
    loop_function = _greedy_loop_function(embedding, output_projection, update_embedding) if feed_previous else None
    return embedding, loop_function


def rnn_decoder(decoder_inputs, initial_state, cell, loop_function=None, scope=None):
    """Runs `cell` over `decoder_inputs` from `initial_state` (TF1's `rnn_decoder`).

    With a `loop_function`, only the first input (the "GO" symbol) is used; every later input is
    `loop_function(previous_output, i)`, called under the variable scope "loop_function" with
    reuse (so variables it gets are the existing ones). Variables live under `scope`
    (default "rnn_decoder"); steps after the first reuse them.

    Args:
      decoder_inputs: list (or iterable) of `[batch, input_size]` tensors.
      initial_state: the cell's state to start from, e.g. an encoder's final state.
      cell: any RNN cell.
      loop_function: optional `f(prev, i) -> next input`.
      scope: variable scope (name or scope object).

    Returns:
      `(outputs, state)`: the list of `[batch, cell.output_size]` outputs, one per input, and the
      state after the last step.
    """
    require_graph_mode("tfstate.legacy_seq2seq.rnn_decoder")
    with tf.compat.v1.variable_scope(scope or "rnn_decoder"):
        state, outputs, prev = initial_state, [], None
        for i, inp in enumerate(decoder_inputs):
            if loop_function is not None and prev is not None:
                with tf.compat.v1.variable_scope("loop_function", reuse=True):
                    inp = loop_function(prev, i)
            if i > 0:
                tf.compat.v1.get_variable_scope().reuse_variables()
            output, state = cell(inp, state)
            outputs.append(output)
            if loop_function is not None:
                prev = output
    return outputs, state


def embedding_rnn_decoder(
    decoder_inputs,
    initial_state,
    cell,
    num_symbols,
    embedding_size,
    output_projection=None,
    feed_previous=False,
    update_embedding_for_previous=True,
    scope=None,
):
    """`rnn_decoder` over embedded symbols, greedy when `feed_previous` (TF1's `embedding_rnn_decoder`).

    Variables: `embedding_rnn_decoder/embedding` `[num_symbols, embedding_size]` and the cell's
    under `embedding_rnn_decoder/rnn_decoder/`. With `feed_previous=True` only the first symbol is
    read; each later input is the embedding of the argmax of the previous output (projected by
    `output_projection = (W, B)` first, when given).

    Args:
      decoder_inputs: list of `[batch]` int tensors.
      initial_state: the cell's state to start from.
      cell: any RNN cell (its outputs are logits unless `output_projection` is given).
      num_symbols: rows of the embedding (the vocabulary size).
      embedding_size: columns of the embedding.
      output_projection: None, or `(W, B)` with W `[cell.output_size, num_symbols]`, B `[num_symbols]`.
      feed_previous: bool; True decodes greedily.
      update_embedding_for_previous: with False, fed-back symbols pass no gradient to the embedding.
      scope: variable scope, "embedding_rnn_decoder" by default.

    Returns:
      `(outputs, state)` as `rnn_decoder`.
    """
    require_graph_mode("tfstate.legacy_seq2seq.embedding_rnn_decoder")
    with tf.compat.v1.variable_scope(scope or "embedding_rnn_decoder"):
        embedding, loop_function = _decoder_embedding(
            num_symbols,
            embedding_size,
            output_projection,
            feed_previous,
            update_embedding_for_previous,
            "embedding_rnn_decoder",
        )
        embedded = (tf.nn.embedding_lookup(embedding, symbols) for symbols in decoder_inputs)
        return rnn_decoder(embedded, initial_state, cell, loop_function=loop_function)
