"""TF1's attention decoders (Vinyals et al. 2015, arXiv:1412.7449): `attention_decoder`, `embedding_attention_decoder`.

One step, for each head a (query = the cell's state, all its parts concatenated):

    x = [input, read_1, ..., read_H] @ kernel + bias                  variables attention_decoder/kernel, bias
    cell_output, state = cell(x, state)
    score[j] = AttnV_a . tanh(states[j] @ AttnW_a + query @ W_a + b_a) W_a, b_a: Attention_a/kernel, bias
    read_a = sum_j softmax(score)[j] * states[j]
    output = [cell_output, read_1, ..., read_H] @ W_o + b_o           AttnOutputProjection/kernel, bias
"""

import tensorflow as tf

from tfstate._checks import require_graph_mode
from tfstate._linear import linear
from tfstate.legacy_seq2seq.decoders import _decoder_embedding


def _input_size(inp, step):
    """The static depth of a decoder input `[batch, input_size]`, which the input merge's kernel needs."""
    if inp.shape.rank != 2 or inp.shape[1] is None:
        raise ValueError(
            f"attention_decoder needs decoder inputs of shape [batch, input_size] with a known "
            f"input_size; input {step} has shape {inp.shape}."
        )
    return inp.shape[1]


def attention_decoder(
    decoder_inputs,
    initial_state,
    attention_states,
    cell,
    output_size=None,
    num_heads=1,
    loop_function=None,
    dtype=None,
    scope=None,
    initial_state_attention=False,
):
    """RNN decoder that reads `attention_states` through `num_heads` attention heads (TF1's `attention_decoder`).

    Variables under `scope` (default "attention_decoder"): `AttnW_a` `[1, 1, depth, depth]` and
    `AttnV_a` `[depth]` per head, `kernel`/`bias` (the input merge), the cell's, `Attention_a/kernel`,
    `Attention_a/bias` per head, `AttnOutputProjection/kernel`, `.../bias`.

    Args:
      decoder_inputs: list of `[batch, input_size]` tensors with a known `input_size`.
      initial_state: the cell's state to start from.
      attention_states: `[batch, length, depth]` with a known depth (e.g. the encoder's outputs).
      cell: any RNN cell.
      output_size: size of the outputs; `cell.output_size` by default.
      num_heads: number of attention heads (>= 1).
      loop_function: optional `f(prev, i) -> next input`, as in `rnn_decoder`.
      dtype: dtype of the variables and attention reads; the scope's (float32) by default.
      scope: variable scope.
      initial_state_attention: if True, the first step reads attention from `initial_state` (to
        resume decoding from a stored state) instead of starting from zero reads.

    Returns:
      `(outputs, state)`: one `[batch, output_size]` output per input, and the final state.

    Raises:
      ValueError: no decoder inputs, `num_heads < 1`, or a depth that is not known statically.
    """
    require_graph_mode("tfstate.legacy_seq2seq.attention_decoder")
    decoder_inputs = [tf.convert_to_tensor(inp) for inp in decoder_inputs]
    if not decoder_inputs:
        raise ValueError("attention_decoder needs at least one decoder input; got an empty list.")
    _input_size(decoder_inputs[0], 0)
    if num_heads < 1:
        raise ValueError(f"attention_decoder needs num_heads >= 1 (for none, use rnn_decoder); got {num_heads}.")
    attention_states = tf.convert_to_tensor(attention_states)
    if attention_states.shape.rank != 3 or attention_states.shape[2] is None:
        raise ValueError(
            "attention_decoder needs attention_states of shape [batch, length, depth] with a known "
            f"depth; got shape {attention_states.shape}."
        )
    if output_size is None:
        output_size = cell.output_size

    with tf.compat.v1.variable_scope(scope or "attention_decoder", dtype=dtype) as variable_scope:
        dtype = variable_scope.dtype
        batch_size = tf.shape(decoder_inputs[0])[0]
        attn_length = attention_states.shape[1]
        if attn_length is None:
            attn_length = tf.shape(attention_states)[1]
        attn_size = attention_states.shape[2]
        hidden = tf.reshape(attention_states, [-1, attn_length, 1, attn_size])
        hidden_features, score_vectors = [], []
        for head in range(num_heads):
            k = tf.compat.v1.get_variable(f"AttnW_{head}", [1, 1, attn_size, attn_size], dtype=dtype)
            hidden_features.append(tf.nn.conv2d(hidden, k, [1, 1, 1, 1], "SAME"))  # states @ AttnW, as a 1x1 conv
            score_vectors.append(tf.compat.v1.get_variable(f"AttnV_{head}", [attn_size], dtype=dtype))

        def attention(query):
            """One read per head of `hidden`, weighted by softmax scores against `query` (a state, flattened)."""
            if tf.nest.is_nested(query):
                query = tf.concat(tf.nest.flatten(query), 1)
            reads = []
            for head in range(num_heads):
                with tf.compat.v1.variable_scope(f"Attention_{head}"):
                    y = tf.reshape(tf.cast(linear(query, attn_size, True), dtype), [-1, 1, 1, attn_size])
                    scores = tf.reduce_sum(score_vectors[head] * tf.tanh(hidden_features[head] + y), [2, 3])
                    weights = tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32)), dtype)  # float32 softmax, as TF1
                    read = tf.reduce_sum(tf.reshape(weights, [-1, attn_length, 1, 1]) * hidden, [1, 2])
                    reads.append(tf.reshape(read, [-1, attn_size]))
            return reads

        reads = [tf.zeros(tf.stack([batch_size, attn_size]), dtype=dtype) for _ in range(num_heads)]
        for read in reads:
            read.set_shape([None, attn_size])
        if initial_state_attention:
            reads = attention(initial_state)
        state, outputs, prev = initial_state, [], None
        for i, inp in enumerate(decoder_inputs):
            if i > 0:
                tf.compat.v1.get_variable_scope().reuse_variables()
            if loop_function is not None and prev is not None:
                with tf.compat.v1.variable_scope("loop_function", reuse=True):
                    inp = loop_function(prev, i)
            x = linear([tf.cast(part, dtype) for part in [inp] + reads], _input_size(inp, i), True)
            cell_output, state = cell(x, state)
            if i == 0 and initial_state_attention:
                with tf.compat.v1.variable_scope(tf.compat.v1.get_variable_scope(), reuse=True):
                    reads = attention(state)
            else:
                reads = attention(state)
            with tf.compat.v1.variable_scope("AttnOutputProjection"):
                output = linear([cell_output] + reads, output_size, True)
            if loop_function is not None:
                prev = output
            outputs.append(output)
    return outputs, state


def embedding_attention_decoder(
    decoder_inputs,
    initial_state,
    attention_states,
    cell,
    num_symbols,
    embedding_size,
    num_heads=1,
    output_size=None,
    output_projection=None,
    feed_previous=False,
    update_embedding_for_previous=True,
    dtype=None,
    scope=None,
    initial_state_attention=False,
):
    """`attention_decoder` over embedded symbols, greedy when `feed_previous` (TF1's `embedding_attention_decoder`).

    Variables: `embedding_attention_decoder/embedding` `[num_symbols, embedding_size]` and
    `attention_decoder`'s under `embedding_attention_decoder/attention_decoder/`. Arguments as in
    `attention_decoder` and `embedding_rnn_decoder`; `decoder_inputs` are `[batch]` int tensors.
    """
    require_graph_mode("tfstate.legacy_seq2seq.embedding_attention_decoder")
    if output_size is None:
        output_size = cell.output_size
    with tf.compat.v1.variable_scope(scope or "embedding_attention_decoder", dtype=dtype):
        embedding, loop_function = _decoder_embedding(
            num_symbols,
            embedding_size,
            output_projection,
            feed_previous,
            update_embedding_for_previous,
            "embedding_attention_decoder",
        )
        embedded = [tf.nn.embedding_lookup(embedding, symbols) for symbols in decoder_inputs]
        return attention_decoder(
            embedded,
            initial_state,
            attention_states,
            cell,
            output_size=output_size,
            num_heads=num_heads,
            loop_function=loop_function,
            initial_state_attention=initial_state_attention,
        )
