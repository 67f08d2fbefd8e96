"""tfstate.seq2seq attention against NumPy re-derivations of TF1's equations, run every way a TF1 program runs it."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_nested_close, graph_session, load_variables, randomize_variables

import tfstate
from tfstate import seq2seq

BATCH, MEMORY_TIME, MEMORY_DEPTH, UNITS, STEPS, INPUT_DEPTH = 3, 5, 4, 6, 3, 2
LENGTHS = np.array([5, 2, 4])


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_lstm(x, c, h, kernel, bias):
    i, j, f, o = np.split(np.concatenate([x, h], 1) @ kernel + bias, 4, axis=1)
    c = _sigmoid(f + 1.0) * c + _sigmoid(i) * np.tanh(j)
    return c, np.tanh(c) * _sigmoid(o)


def _np_score(kind, query, memory, w, prefix, memory_layer="memory_layer"):
    """TF1's score of one mechanism (-inf past each row's memory length) and its values (the masked memory)."""
    mask = np.arange(MEMORY_TIME)[None, :] < LENGTHS[:, None]
    values = memory * mask[:, :, None]
    keys = values @ w[memory_layer + "/kernel:0"]
    if kind.startswith("bahdanau"):
        scope = prefix + "bahdanau_attention/"
        v = w[scope + "attention_v:0"]
        processed = (query @ w[scope + "query_layer/kernel:0"])[:, None, :]
        if kind == "bahdanau_normalized":
            v = w[scope + "attention_g:0"] * v / np.sqrt(np.sum(v * v))
            processed = processed + w[scope + "attention_b:0"]
        score = np.sum(v * np.tanh(keys + processed), 2)
    else:
        score = np.einsum("bd,btd->bt", query, keys)
        if kind == "luong_scaled":
            score = w[prefix + "luong_attention/attention_g:0"] * score
    return np.where(mask, score, -np.inf), values


def _np_attention(kind, query, memory, w, prefix, memory_layer="memory_layer"):
    """TF1's alignments (softmax of the masked score) and context for one mechanism."""
    score, values = _np_score(kind, query, memory, w, prefix, memory_layer)
    alignments = np.exp(score - score.max(1, keepdims=True))
    alignments /= alignments.sum(1, keepdims=True)
    return alignments, np.einsum("bt,btd->bd", alignments, values)


def _mechanism(kind, memory, lengths):
    if kind.startswith("bahdanau"):
        return seq2seq.BahdanauAttention(UNITS, memory, lengths, normalize=kind == "bahdanau_normalized")
    return seq2seq.LuongAttention(UNITS, memory, lengths, scale=kind == "luong_scaled")


@pytest.mark.parametrize("kind", ["bahdanau", "bahdanau_normalized", "luong", "luong_scaled"])
def test_mechanism_alignments_equal_numpy_scores_masked_past_memory_length(kind, rng):
    memory, query = rng.randn(BATCH, MEMORY_TIME, MEMORY_DEPTH), rng.randn(BATCH, UNITS)
    with graph_session() as sess:
        mechanism = _mechanism(kind, tf.constant(memory, tf.float32), LENGTHS)
        with tf.compat.v1.variable_scope("step"):
            alignments, next_state = mechanism(tf.constant(query, tf.float32), state=None)
        w = randomize_variables(sess)
        alignments, next_state, values = sess.run([alignments, next_state, mechanism.values])
    expected, _ = _np_attention(kind, query, memory, w, "step/")
    np.testing.assert_allclose(alignments, expected, atol=1e-5)
    np.testing.assert_array_equal(next_state, alignments)
    assert np.all(alignments[1, 2:] == 0) and np.all(values[1, 2:] == 0)


WRAPPERS = {
    # name: (mechanism kinds, AttentionWrapper arguments)
    "bahdanau_layer_history": (["bahdanau_normalized"], dict(attention_layer_size=5, alignment_history=True)),
    "two_mechanisms": (["bahdanau", "luong_scaled"], dict(attention_layer_size=[4, 3], alignment_history=True)),
    "luong_context_cell_output": (
        ["luong"],
        dict(output_attention=False, cell_input_fn=lambda inputs, attention: tf.concat([attention, inputs], -1)),
    ),
}


def _np_wrapper(name, inputs, memory, w, scope):
    """TF1's AttentionWrapper over all steps of `inputs`: returns (outputs, final attention, alignment history)."""
    kinds, arguments = WRAPPERS[name]
    layer_sizes = arguments.get("attention_layer_size")
    attention = np.zeros([BATCH, sum(layer_sizes) if isinstance(layer_sizes, list) else layer_sizes or MEMORY_DEPTH])
    c = h = np.zeros([BATCH, UNITS])
    outputs, history = [], []
    for t in range(inputs.shape[1]):
        if name == "luong_context_cell_output":
            cell_input = np.concatenate([attention, inputs[:, t]], 1)
        else:
            cell_input = np.concatenate([inputs[:, t], attention], 1)
        c, h = _np_lstm(cell_input, c, h, w[scope + "lstm_cell/kernel:0"], w[scope + "lstm_cell/bias:0"])
        attentions, step_alignments = [], []
        for index, kind in enumerate(kinds):
            suffix = f"_{index}" if index else ""
            alignments, context = _np_attention(kind, h, memory, w, scope, "memory_layer" + suffix)
            if layer_sizes is not None:
                context = np.concatenate([h, context], 1) @ w[scope + f"attention_layer{suffix}/kernel:0"]
            attentions.append(context)
            step_alignments.append(alignments)
        attention = np.concatenate(attentions, 1)
        outputs.append(h if arguments.get("output_attention") is False else attention)
        history.append(step_alignments)
    return np.stack(outputs, 1), attention, [np.stack(steps) for steps in zip(*history)]


def _build_wrapper(name, memory):
    kinds, arguments = WRAPPERS[name]
    mechanisms = [_mechanism(kind, memory, LENGTHS) for kind in kinds]
    return seq2seq.AttentionWrapper(
        tfstate.LSTMCell(UNITS), mechanisms if len(kinds) > 1 else mechanisms[0], **arguments
    )


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_wrapper_through_dynamic_rnn_equals_numpy_tf1_equations_with_tf1_names(name, rng):
    inputs, memory = rng.randn(BATCH, STEPS, INPUT_DEPTH), rng.randn(BATCH, MEMORY_TIME, MEMORY_DEPTH)
    with graph_session() as sess:
        wrapper = _build_wrapper(name, tf.constant(memory, tf.float32))
        outputs, final = tfstate.dynamic_rnn(wrapper, tf.constant(inputs, tf.float32), dtype=tf.float32)
        history = final.alignment_history
        histories = [
            ta.stack() for ta in tf.nest.flatten(history, expand_composites=False) if isinstance(ta, tf.TensorArray)
        ]
        w = randomize_variables(sess)
        outputs, attention, histories, time = sess.run([outputs, final.attention, histories, final.time])
    expected_outputs, expected_attention, expected_history = _np_wrapper(
        name, inputs, memory, w, "rnn/attention_wrapper/"
    )
    np.testing.assert_allclose(outputs, expected_outputs, atol=1e-5)
    np.testing.assert_allclose(attention, expected_attention, atol=1e-5)
    if WRAPPERS[name][1].get("alignment_history"):
        assert_nested_close(histories, expected_history)
    assert time == STEPS


def test_wrapper_steps_in_a_while_loop_from_zero_state_equal_numpy(rng):
    inputs, memory = rng.randn(BATCH, STEPS, INPUT_DEPTH), rng.randn(BATCH, MEMORY_TIME, MEMORY_DEPTH)
    with graph_session() as sess:
        wrapper = _build_wrapper("two_mechanisms", tf.constant(memory, tf.float32))
        x = tf.constant(inputs, tf.float32)
        outputs = tf.TensorArray(tf.float32, size=STEPS)

        def body(t, state, outputs):
            output, state = wrapper(x[:, t], state)
            return t + 1, state, outputs.write(t, output)

        _, final, outputs = tf.compat.v1.while_loop(
            lambda t, *_: t < STEPS, body, [0, wrapper.zero_state(BATCH, tf.float32), outputs]
        )
        names = [v.op.name for v in tf.compat.v1.global_variables()]
        w = randomize_variables(sess)
        outputs, first_history = sess.run(
            [tf.transpose(outputs.stack(), [1, 0, 2]), final.alignment_history[0].stack()]
        )
    expected_outputs, _, expected_history = _np_wrapper("two_mechanisms", inputs, memory, w, "attention_wrapper/")
    np.testing.assert_allclose(outputs, expected_outputs, atol=1e-5)
    np.testing.assert_allclose(first_history, expected_history[0], atol=1e-5)
    assert sorted(names) == sorted(
        [
            "memory_layer/kernel",
            "memory_layer_1/kernel",
            "attention_wrapper/lstm_cell/kernel",
            "attention_wrapper/lstm_cell/bias",
            "attention_wrapper/bahdanau_attention/query_layer/kernel",
            "attention_wrapper/bahdanau_attention/attention_v",
            "attention_wrapper/luong_attention/attention_g",
            "attention_wrapper/attention_layer/kernel",
            "attention_wrapper/attention_layer_1/kernel",
        ]
    )


def _greedy_decode(make_cell, memory, lengths, embeddings):
    """Greedy decoding with an attentional cell; returns (rnn_output, sample_id, final alignment history)."""
    mechanism = seq2seq.BahdanauAttention(UNITS, memory, lengths)
    cell = seq2seq.AttentionWrapper(make_cell(), mechanism, attention_layer_size=UNITS, alignment_history=True)
    helper = seq2seq.GreedyEmbeddingHelper(embeddings, tf.fill([BATCH], 0), end_token=1)
    decoder = seq2seq.BasicDecoder(
        cell, helper, cell.zero_state(BATCH, tf.float32), output_layer=tfstate.layers.Dense(5)
    )
    outputs, final, _ = seq2seq.dynamic_decode(decoder, maximum_iterations=4)
    return outputs.rnn_output, outputs.sample_id, final.alignment_history.stack()


FUSED_AND_PLAIN = [
    (lambda: tfstate.rnn_cell.LSTMBlockCell(UNITS), lambda: tfstate.LSTMCell(UNITS)),
    (lambda: tfstate.rnn_cell.GRUBlockCellV2(UNITS), lambda: tfstate.GRUCell(UNITS)),
    (
        lambda: tfstate.MultiRNNCell([tfstate.rnn_cell.LSTMBlockCell(UNITS), tfstate.rnn_cell.GRUBlockCellV2(UNITS)]),
        lambda: tfstate.MultiRNNCell([tfstate.LSTMCell(UNITS), tfstate.GRUCell(UNITS)]),
    ),
]


@pytest.mark.parametrize("make_fused, make_plain", FUSED_AND_PLAIN, ids=["lstm_block", "gru_block_v2", "multi"])
def test_wrapper_around_fused_cells_decodes_like_the_plain_cells_with_the_same_checkpoint(make_fused, make_plain, rng):
    memory = rng.randn(BATCH, MEMORY_TIME, MEMORY_DEPTH).astype(np.float32)
    embeddings = rng.randn(5, 3).astype(np.float32)
    with graph_session() as sess:
        plain = _greedy_decode(make_plain, memory, LENGTHS, embeddings)
        names = [v.op.name for v in tf.compat.v1.global_variables()]
        w = randomize_variables(sess)
        plain = sess.run(plain)
    with graph_session() as sess:
        fused = _greedy_decode(make_fused, memory, LENGTHS, embeddings)
        load_variables(sess, w)
        fused = sess.run(fused)
    assert_nested_close(fused, plain)
    assert "decoder/attention_wrapper/bahdanau_attention/attention_v" in names


def test_attention_errors_name_what_was_expected_and_what_was_given(rng):
    with graph_session():
        memory = tf.constant(rng.randn(BATCH, MEMORY_TIME, MEMORY_DEPTH), tf.float32)
        wrapper = seq2seq.AttentionWrapper(tfstate.LSTMCell(UNITS), seq2seq.BahdanauAttention(UNITS, memory))
        with pytest.raises(ValueError, match=r"zero_state\(batch_size=...\) has 6 rows but the memory has 3.*tile"):
            wrapper.zero_state(6, tf.float32)
        state = wrapper.zero_state(BATCH, tf.float32)
        with pytest.raises(
            ValueError,
            match=r"'cell_state' must have the shapes .* got LSTMStateTuple\(c=Tensor"
            r"Shape\(\[6, 6\]\)",
        ):
            state.clone(cell_state=tfstate.LSTMCell(UNITS).zero_state(6, tf.float32))
        with pytest.raises(TypeError, match=r"needs an AttentionWrapperState .* got LSTMStateTuple"):
            wrapper(tf.zeros([BATCH, 2]), state.cell_state)
        narrow = seq2seq.AttentionWrapper(tfstate.LSTMCell(UNITS), seq2seq.LuongAttention(4, memory))
        with pytest.raises(ValueError, match=r"the query has depth 6, the keys 4. Set num_units to the query's depth"):
            narrow(tf.zeros([BATCH, 2]), narrow.zero_state(BATCH, tf.float32))
        with pytest.raises(ValueError, match=r"memory_sequence_length has 2 rows, the memory 3"):
            seq2seq.LuongAttention(UNITS, memory, [1, 2])
        with pytest.raises(ValueError, match="one attention_layer_size per attention mechanism: 1 mechanism"):
            seq2seq.AttentionWrapper(
                tfstate.LSTMCell(UNITS), seq2seq.LuongAttention(UNITS, memory), attention_layer_size=[2, 3]
            )


def test_hardmax_is_one_hot_at_the_argmax_and_serves_as_probability_fn(rng):
    logits, memory, query = rng.randn(4, 6), rng.randn(BATCH, MEMORY_TIME, MEMORY_DEPTH), rng.randn(BATCH, UNITS)
    with graph_session() as sess:
        hard = seq2seq.hardmax(tf.constant(logits))
        mechanism = seq2seq.LuongAttention(
            UNITS, tf.constant(memory, tf.float32), LENGTHS, probability_fn=seq2seq.hardmax
        )
        alignments, _ = mechanism(tf.constant(query, tf.float32), state=None)
        w = randomize_variables(sess)
        hard, alignments = sess.run([hard, alignments])
    np.testing.assert_array_equal(hard, np.eye(6)[logits.argmax(1)])
    soft, _ = _np_attention("luong", query, memory, w, "")
    np.testing.assert_array_equal(alignments, np.eye(MEMORY_TIME)[soft.argmax(1)])


def _np_monotonic(p_choose, previous):
    """The monotonic recurrence, step by step: q_i = (1 - p_{i-1}) q_{i-1} + a'_i, a_i = p_i q_i."""
    q, attention = np.zeros(len(p_choose)), np.zeros_like(p_choose)
    for i in range(p_choose.shape[1]):
        q = (1 - p_choose[:, i - 1]) * q + previous[:, i] if i else previous[:, 0]
        attention[:, i] = p_choose[:, i] * q
    return attention


def test_monotonic_attention_modes_equal_the_recurrence(rng):
    p_choose = rng.uniform(0.05, 0.95, [3, 6])
    previous = rng.dirichlet(np.ones(6), 3)
    hard_p = (rng.uniform(size=[3, 6]) > 0.5).astype(np.float64)
    hard_previous = np.eye(6)[[0, 2, 5]]
    with graph_session() as sess:
        recursive, parallel, hard = sess.run(
            [
                seq2seq.monotonic_attention(p_choose, previous, "recursive"),
                seq2seq.monotonic_attention(p_choose, previous, "parallel"),
                seq2seq.monotonic_attention(hard_p, hard_previous, "hard"),
            ]
        )
        with pytest.raises(ValueError, match=r"mode must be one of \('recursive', 'parallel', 'hard'\); got 'soft'"):
            seq2seq.monotonic_attention(p_choose, previous, "soft")
    np.testing.assert_allclose(recursive, _np_monotonic(p_choose, previous), atol=1e-12)
    np.testing.assert_allclose(parallel, _np_monotonic(p_choose, previous), atol=1e-8)
    np.testing.assert_array_equal(hard, _np_monotonic(hard_p, hard_previous))
    np.testing.assert_allclose(seq2seq.safe_cumprod(p_choose, axis=1).numpy(), np.cumprod(p_choose, 1), rtol=1e-12)


@pytest.mark.parametrize("kind", ["bahdanau", "luong_scaled"])
def test_monotonic_mechanisms_start_at_the_first_entry_and_add_a_score_bias(kind, rng):
    memory, query = rng.randn(BATCH, MEMORY_TIME, MEMORY_DEPTH), rng.randn(BATCH, UNITS)
    mechanism_class = seq2seq.BahdanauMonotonicAttention if kind == "bahdanau" else seq2seq.LuongMonotonicAttention
    with graph_session() as sess:
        mechanism = mechanism_class(
            UNITS,
            tf.constant(memory, tf.float32),
            LENGTHS,
            mode="recursive",
            **({} if kind == "bahdanau" else {"scale": True}),
        )
        start = mechanism.initial_alignments(BATCH, tf.float32)
        alignments, _ = mechanism(tf.constant(query, tf.float32), state=start)
        w = randomize_variables(sess)
        start, alignments = sess.run([start, alignments])
    plain_scope, scope = kind.split("_")[0] + "_attention/", kind.split("_")[0] + "_monotonic_attention/"
    assert scope + "attention_score_bias:0" in w
    score, _ = _np_score(
        kind, query, memory, {name.replace(scope, plain_scope): value for name, value in w.items()}, ""
    )
    p_choose = 1 / (1 + np.exp(-(score + w[scope + "attention_score_bias:0"])))
    np.testing.assert_array_equal(start, np.eye(MEMORY_TIME)[[0] * BATCH])
    np.testing.assert_allclose(alignments, _np_monotonic(p_choose, start), atol=1e-5)
