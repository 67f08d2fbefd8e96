"""TF1's whole sequence-to-sequence models: an encoder unrolled over a list of inputs, then a decoder from its state.

    basic_rnn_seq2seq           encoder (a deep copy of cell) -> rnn_decoder
    tied_rnn_seq2seq            one cell, one set of weights, for encoder and decoder
    embedding_rnn_seq2seq       symbols in (EmbeddingWrapper), embedding_rnn_decoder out
    embedding_tied_rnn_seq2seq  one embedding and one cell for both sides
    embedding_attention_seq2seq the decoder attends over the encoder's outputs
    one2many_rnn_seq2seq        one encoder, several named decoders

A tensor `feed_previous` builds the greedy and the teacher-forced decoder (sharing weights) and
picks one per run with `tf.cond`, as TF1 did.
"""

import copy

import tensorflow as tf

from tfstate._checks import require_graph_mode
from tfstate.contrib.projection_wrappers import EmbeddingWrapper, OutputProjectionWrapper
from tfstate.legacy_seq2seq.attention import embedding_attention_decoder
from tfstate.legacy_seq2seq.decoders import (
    _check_output_projection,
    _greedy_loop_function,
    embedding_rnn_decoder,
    rnn_decoder,
)


def _encode(cell, inputs, dtype, scope=None):
    """TF1's `static_rnn(cell, inputs, dtype=dtype, scope=scope)` from the zero state: `(outputs, final_state)`.

    Variables under `scope` ("rnn" by default), as there; steps after the first reuse them.
    """
    inputs = list(inputs)
    if not inputs:
        raise ValueError("The encoder needs at least one input; got an empty list of encoder_inputs.")
    with tf.compat.v1.variable_scope(scope or "rnn") as variable_scope:
        first = tf.convert_to_tensor(tf.nest.flatten(inputs[0])[0])
        batch_size = first.shape[0] if first.shape.rank else None
        state = cell.zero_state(batch_size if batch_size is not None else tf.shape(first)[0], dtype)
        outputs = []
        for time, inp in enumerate(inputs):
            if time > 0:
                variable_scope.reuse_variables()
            output, state = cell(inp, state)
            outputs.append(output)
    return outputs, state


def _create_outside_functions(getter, *args, **kwargs):
    """Custom getter: variables made inside a `tf.cond` branch (a function graph in TF 2) go to the outer graph."""
    if tf.compat.v1.get_default_graph().building_function:
        with tf.init_scope():
            return getter(*args, **kwargs)
    return getter(*args, **kwargs)


def _decode_either_way(feed_previous, decode):
    """`decode(feed_previous)` for a scalar bool tensor: both decoders built, `tf.cond` runs one.

    The greedy decoder (`decode(True)`) is built first and makes the variables; the teacher-forced
    one (`decode(False)`) reuses them, as in TF1. Returns `(outputs, state)` like `decode`.
    """
    built = []

    def branch(flag):
        with tf.compat.v1.variable_scope(
            tf.compat.v1.get_variable_scope(), reuse=None if flag else True, custom_getter=_create_outside_functions
        ):
            outputs, state = decode(flag)
        built.append((len(outputs), state))
        return list(outputs) + tf.nest.flatten(state)

    flat = tf.cond(feed_previous, lambda: branch(True), lambda: branch(False))
    count, state = built[0]
    return flat[:count], tf.nest.pack_sequence_as(state, flat[count:])


def basic_rnn_seq2seq(encoder_inputs, decoder_inputs, cell, dtype=tf.float32, scope=None):
    """Encodes `encoder_inputs` with a deep copy of `cell`, then `rnn_decoder` from its state (TF1's).

    Encoder and decoder have the same kind of cell but separate weights: `basic_rnn_seq2seq/rnn/...`
    and `basic_rnn_seq2seq/rnn_decoder/...`. Inputs are lists of `[batch, depth]` tensors.
    Returns `(outputs, state)` as `rnn_decoder`.
    """
    require_graph_mode("tfstate.legacy_seq2seq.basic_rnn_seq2seq")
    with tf.compat.v1.variable_scope(scope or "basic_rnn_seq2seq"):
        _, encoder_state = _encode(copy.deepcopy(cell), encoder_inputs, dtype)
        return rnn_decoder(decoder_inputs, encoder_state, cell)


def tied_rnn_seq2seq(encoder_inputs, decoder_inputs, cell, loop_function=None, dtype=tf.float32, scope=None):
    """Encoder and decoder are one cell with one set of weights (TF1's `tied_rnn_seq2seq`).

    Variables under `combined_tied_rnn_seq2seq/<scope>/` (`scope` default "tied_rnn_seq2seq").
    `loop_function` as in `rnn_decoder`. Returns `(outputs, state)`.
    """
    require_graph_mode("tfstate.legacy_seq2seq.tied_rnn_seq2seq")
    with tf.compat.v1.variable_scope("combined_tied_rnn_seq2seq"):
        scope = scope or "tied_rnn_seq2seq"
        _, encoder_state = _encode(cell, encoder_inputs, dtype, scope=scope)
        tf.compat.v1.get_variable_scope().reuse_variables()
        return rnn_decoder(decoder_inputs, encoder_state, cell, loop_function=loop_function, scope=scope)


def embedding_rnn_seq2seq(
    encoder_inputs,
    decoder_inputs,
    cell,
    num_encoder_symbols,
    num_decoder_symbols,
    embedding_size,
    output_projection=None,
    feed_previous=False,
    dtype=None,
    scope=None,
):
    """Symbols in, logits out: an embedding encoder and `embedding_rnn_decoder` (TF1's `embedding_rnn_seq2seq`).

    The encoder is `EmbeddingWrapper(deep copy of cell)` (variables `embedding_rnn_seq2seq/rnn/
    embedding_wrapper/...`); the decoder, `embedding_rnn_decoder` over `cell`, wrapped in an
    `OutputProjectionWrapper(cell, num_decoder_symbols)` when `output_projection` is None.

    Args:
      encoder_inputs: list of `[batch]` int tensors.
      decoder_inputs: list of `[batch]` int tensors.
      cell: any RNN cell.
      num_encoder_symbols: the encoder's vocabulary size.
      num_decoder_symbols: the decoder's vocabulary size.
      embedding_size: depth of both embeddings.
      output_projection: None, or `(W, B)` mapping the cell's outputs to `num_decoder_symbols` logits
        (the outputs are then the cell's, unprojected).
      feed_previous: bool, or a scalar bool tensor to choose per run: True decodes greedily.
      dtype: dtype of the states and variables (float32 by default).
      scope: variable scope, "embedding_rnn_seq2seq" by default.

    Returns:
      `(outputs, state)`: the decoder's outputs (one per decoder input) and final state.
    """
    require_graph_mode("tfstate.legacy_seq2seq.embedding_rnn_seq2seq")
    with tf.compat.v1.variable_scope(scope or "embedding_rnn_seq2seq", dtype=dtype) as variable_scope:
        dtype = variable_scope.dtype
        encoder_cell = EmbeddingWrapper(
            copy.deepcopy(cell), embedding_classes=num_encoder_symbols, embedding_size=embedding_size
        )
        _, encoder_state = _encode(encoder_cell, encoder_inputs, dtype)
        if output_projection is None:
            cell = OutputProjectionWrapper(cell, num_decoder_symbols)

        def decode(greedy, update_embedding_for_previous=True):
            return embedding_rnn_decoder(
                decoder_inputs,
                encoder_state,
                cell,
                num_decoder_symbols,
                embedding_size,
                output_projection=output_projection,
                feed_previous=greedy,
                update_embedding_for_previous=update_embedding_for_previous,
            )

        if isinstance(feed_previous, bool):
            return decode(feed_previous)
        return _decode_either_way(feed_previous, lambda greedy: decode(greedy, update_embedding_for_previous=False))


def embedding_tied_rnn_seq2seq(
    encoder_inputs,
    decoder_inputs,
    cell,
    num_symbols,
    embedding_size,
    num_decoder_symbols=None,
    output_projection=None,
    feed_previous=False,
    dtype=None,
    scope=None,
):
    """One embedding and one cell for both sides: `tied_rnn_seq2seq` over embedded symbols (TF1's).

    Variables: `embedding_tied_rnn_seq2seq/embedding` `[num_symbols, embedding_size]` and the cell's
    (wrapped in `OutputProjectionWrapper(cell, num_decoder_symbols or num_symbols)` when
    `output_projection` is None, encoder included, as in TF1) under
    `embedding_tied_rnn_seq2seq/combined_tied_rnn_seq2seq/tied_rnn_seq2seq/`. Other arguments and
    the result as in `embedding_rnn_seq2seq`.
    """
    require_graph_mode("tfstate.legacy_seq2seq.embedding_tied_rnn_seq2seq")
    with tf.compat.v1.variable_scope(scope or "embedding_tied_rnn_seq2seq", dtype=dtype) as variable_scope:
        dtype = variable_scope.dtype
        if output_projection is not None:
            output_projection = _check_output_projection(
                output_projection, num_symbols, dtype, "embedding_tied_rnn_seq2seq"
            )
        embedding = tf.compat.v1.get_variable("embedding", [num_symbols, embedding_size], dtype=dtype)
        embedded_encoder_inputs = [tf.nn.embedding_lookup(embedding, symbols) for symbols in encoder_inputs]
        embedded_decoder_inputs = [tf.nn.embedding_lookup(embedding, symbols) for symbols in decoder_inputs]
        if output_projection is None:
            cell = OutputProjectionWrapper(cell, num_decoder_symbols or num_symbols)

        def decode(greedy, update_embedding_for_previous=True):
            loop_function = None
            if greedy:
                loop_function = _greedy_loop_function(embedding, output_projection, update_embedding_for_previous)
            return tied_rnn_seq2seq(
                embedded_encoder_inputs, embedded_decoder_inputs, cell, loop_function=loop_function, dtype=dtype
            )

        if isinstance(feed_previous, bool):
            return decode(feed_previous)
        return _decode_either_way(feed_previous, lambda greedy: decode(greedy, update_embedding_for_previous=False))


def embedding_attention_seq2seq(
    encoder_inputs,
    decoder_inputs,
    cell,
    num_encoder_symbols,
    num_decoder_symbols,
    embedding_size,
    encoder_cell=None,
    num_heads=1,
    output_projection=None,
    feed_previous=False,
    dtype=None,
    scope=None,
    initial_state_attention=False,
):
    """Symbols in, logits out, the decoder attending over the encoder's outputs (TF1's `embedding_attention_seq2seq`).

    The encoder is `EmbeddingWrapper(encoder_cell or a deep copy of cell)` (variables
    `embedding_attention_seq2seq/rnn/embedding_wrapper/...`); its outputs are the attention
    states of `embedding_attention_decoder` (variables `embedding_attention_seq2seq/
    embedding_attention_decoder/...`), run with `cell`, wrapped in
    `OutputProjectionWrapper(cell, num_decoder_symbols)` when `output_projection` is None.
    Called again under reuse (as `model_with_buckets` does per bucket) it makes no new variables.

    Args:
      encoder_cell: the encoder's cell; None deep-copies `cell` (separate weights, same kind).
      num_heads: attention heads.
      initial_state_attention: as in `attention_decoder` (the other arguments are those of
        `embedding_rnn_seq2seq`).

    Returns:
      `(outputs, state)`: the decoder's outputs (one per decoder input) and final state.
    """
    require_graph_mode("tfstate.legacy_seq2seq.embedding_attention_seq2seq")
    with tf.compat.v1.variable_scope(scope or "embedding_attention_seq2seq", dtype=dtype) as variable_scope:
        dtype = variable_scope.dtype
        if encoder_cell is None:
            encoder_cell = copy.deepcopy(cell)
        encoder_cell = EmbeddingWrapper(
            encoder_cell, embedding_classes=num_encoder_symbols, embedding_size=embedding_size
        )
        encoder_outputs, encoder_state = _encode(encoder_cell, encoder_inputs, dtype)
        attention_states = tf.concat([tf.reshape(e, [-1, 1, cell.output_size]) for e in encoder_outputs], 1)
        output_size = None
        if output_projection is None:
            cell = OutputProjectionWrapper(cell, num_decoder_symbols)
            output_size = num_decoder_symbols

        def decode(greedy, update_embedding_for_previous=True):
            return embedding_attention_decoder(
                decoder_inputs,
                encoder_state,
                attention_states,
                cell,
                num_decoder_symbols,
                embedding_size,
                num_heads=num_heads,
                output_size=output_size,
                output_projection=output_projection,
                feed_previous=greedy,
                update_embedding_for_previous=update_embedding_for_previous,
                initial_state_attention=initial_state_attention,
            )

        if isinstance(feed_previous, bool):
            return decode(feed_previous)
        return _decode_either_way(feed_previous, lambda greedy: decode(greedy, update_embedding_for_previous=False))


def _like_rnn_cell(cell):
    return all(hasattr(cell, name) for name in ("state_size", "output_size", "zero_state")) and callable(cell)


def one2many_rnn_seq2seq(
    encoder_inputs,
    decoder_inputs_dict,
    enc_cell,
    dec_cells_dict,
    num_encoder_symbols,
    num_decoder_symbols_dict,
    embedding_size,
    feed_previous=False,
    dtype=None,
    scope=None,
):
    """One embedding encoder, one `embedding_rnn_decoder` per named task (TF1's `one2many_rnn_seq2seq`).

    Variables: `one2many_rnn_seq2seq/rnn/embedding_wrapper/...` (the encoder, `enc_cell` itself)
    and, per decoder name, `one2many_rnn_seq2seq/one2many_decoder_<name>/embedding_rnn_decoder/...`
    with `OutputProjectionWrapper(dec_cells_dict[name], num_decoder_symbols_dict[name])`.

    Returns:
      `(outputs_dict, state_dict)`, keyed by decoder name.

    Raises:
      TypeError: a cell is not an RNN cell.
      ValueError: `dec_cells_dict` and `decoder_inputs_dict` have different names, or
        `num_decoder_symbols_dict` lacks one.
    """
    require_graph_mode("tfstate.legacy_seq2seq.one2many_rnn_seq2seq")
    if not _like_rnn_cell(enc_cell):
        raise TypeError(f"one2many_rnn_seq2seq needs an RNN cell as enc_cell; got {type(enc_cell).__name__}.")
    if set(dec_cells_dict) != set(decoder_inputs_dict):
        raise ValueError(
            f"one2many_rnn_seq2seq needs one decoder cell per decoder input list: dec_cells_dict has "
            f"{sorted(dec_cells_dict)}, decoder_inputs_dict has {sorted(decoder_inputs_dict)}."
        )
    missing = sorted(set(decoder_inputs_dict) - set(num_decoder_symbols_dict))
    if missing:
        raise ValueError(
            f"one2many_rnn_seq2seq needs num_decoder_symbols_dict to give every decoder's vocabulary "
            f"size; missing {missing}."
        )
    for name, dec_cell in dec_cells_dict.items():
        if not _like_rnn_cell(dec_cell):
            raise TypeError(
                f"one2many_rnn_seq2seq needs RNN cells in dec_cells_dict; '{name}' is a {type(dec_cell).__name__}."
            )
    outputs_dict, state_dict = {}, {}
    with tf.compat.v1.variable_scope(scope or "one2many_rnn_seq2seq", dtype=dtype) as variable_scope:
        dtype = variable_scope.dtype
        encoder_cell = EmbeddingWrapper(enc_cell, embedding_classes=num_encoder_symbols, embedding_size=embedding_size)
        _, encoder_state = _encode(encoder_cell, encoder_inputs, dtype)
        for name, decoder_inputs in decoder_inputs_dict.items():
            num_decoder_symbols = num_decoder_symbols_dict[name]
            with tf.compat.v1.variable_scope(f"one2many_decoder_{name}"):
                dec_cell = OutputProjectionWrapper(dec_cells_dict[name], num_decoder_symbols)

                def decode(
                    greedy, decoder_inputs=decoder_inputs, dec_cell=dec_cell, num_decoder_symbols=num_decoder_symbols
                ):
                    return embedding_rnn_decoder(
                        decoder_inputs,
                        encoder_state,
                        dec_cell,
                        num_decoder_symbols,
                        embedding_size,
                        feed_previous=greedy,
                    )

                if isinstance(feed_previous, bool):
                    outputs_dict[name], state_dict[name] = decode(feed_previous)
                else:
                    outputs_dict[name], state_dict[name] = _decode_either_way(feed_previous, decode)
    return outputs_dict, state_dict
