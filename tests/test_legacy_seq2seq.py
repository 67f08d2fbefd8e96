"""tfstate.legacy_seq2seq against independent oracles: NumPy losses and attention, the same steps run by hand,
greedy decoding equal to teacher forcing on the argmax symbols, and TF1's variable names written from TF1's source."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import graph_session, load_variables, randomize_variables

import tfstate

S = tfstate.legacy_seq2seq
BATCH = 3


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _crossent(logits, labels):
    return -np.log(_softmax(logits)[np.arange(len(labels)), labels])


def _symbols(rng, steps, vocab, batch=BATCH):
    return [tf.constant(rng.randint(vocab, size=batch).astype(np.int32)) for _ in range(steps)]


def _names(variables=None):
    return [v.op.name for v in (tf.compat.v1.global_variables() if variables is None else variables)]


# ---------------------------------------------------------------- losses


def _loss_inputs(rng, steps=3, vocab=5):
    logits = rng.randn(steps, BATCH, vocab).astype(np.float32)
    targets = rng.randint(vocab, size=(steps, BATCH)).astype(np.int32)
    weights = rng.rand(steps, BATCH).astype(np.float32)
    weights[-1, 0] = 0.0  # a masked (padding) step
    return logits, targets, weights


@pytest.mark.parametrize("average_across_timesteps", [True, False])
def test_sequence_loss_by_example_is_the_weighted_crossentropy_per_sequence(rng, average_across_timesteps):
    logits, targets, weights = _loss_inputs(rng)
    expected = sum(weights[t] * _crossent(logits[t], targets[t]) for t in range(3))
    if average_across_timesteps:
        expected = expected / (weights.sum(0) + 1e-12)
    with graph_session() as sess:
        loss = S.sequence_loss_by_example(
            list(logits), list(targets), list(weights), average_across_timesteps=average_across_timesteps
        )
        assert loss.op.name.startswith("sequence_loss_by_example/")
        np.testing.assert_allclose(sess.run(loss), expected, rtol=1e-5)


@pytest.mark.parametrize("across_timesteps", [True, False])
@pytest.mark.parametrize("across_batch", [True, False])
def test_sequence_loss_sums_the_batch_and_divides_by_its_size_when_asked(rng, across_timesteps, across_batch):
    logits, targets, weights = _loss_inputs(rng)
    per_sequence = sum(weights[t] * _crossent(logits[t], targets[t]) for t in range(3))
    if across_timesteps:
        per_sequence = per_sequence / (weights.sum(0) + 1e-12)
    expected = per_sequence.sum() / (BATCH if across_batch else 1)
    with graph_session() as sess:
        loss = S.sequence_loss(
            list(logits),
            list(targets),
            list(weights),
            average_across_timesteps=across_timesteps,
            average_across_batch=across_batch,
        )
        np.testing.assert_allclose(sess.run(loss), expected, rtol=1e-5)


def test_softmax_loss_function_replaces_the_softmax_and_gets_keyword_arguments(rng):
    logits, targets, weights = _loss_inputs(rng)
    calls = []

    def squared_error(labels, logits):  # keyword-only use, as TF1 required
        calls.append((labels, logits))
        return tf.reduce_sum(tf.square(logits - tf.one_hot(labels, 5)), 1)

    expected = sum(weights[t] * ((logits[t] - np.eye(5)[targets[t]]) ** 2).sum(1) for t in range(3))
    with graph_session() as sess:
        loss = S.sequence_loss(
            list(logits),
            list(targets),
            list(weights),
            average_across_timesteps=False,
            softmax_loss_function=squared_error,
        )
        np.testing.assert_allclose(sess.run(loss), expected.sum() / BATCH, rtol=1e-5)
    assert len(calls) == 3


def test_all_zero_weights_give_zero_loss_not_nan(rng):
    logits, targets, _ = _loss_inputs(rng)
    with graph_session() as sess:
        loss = S.sequence_loss(list(logits), list(targets), [np.zeros(BATCH, np.float32)] * 3)
        assert sess.run(loss) == 0.0


@pytest.mark.parametrize("function", [S.sequence_loss, S.sequence_loss_by_example])
def test_losses_name_the_lengths_when_the_lists_differ(rng, function):
    logits, targets, weights = _loss_inputs(rng)
    with graph_session():
        with pytest.raises(ValueError, match="got 3 logits, 2 targets and 3 weights"):
            function(list(logits), list(targets)[:2], list(weights))


# ---------------------------------------------------------------- rnn_decoder


def _numpy_basic_lstm(values, prefix):
    kernel, bias = values[prefix + "/kernel:0"], values[prefix + "/bias:0"]

    def step(x, state):
        c, h = state
        i, j, f, o = np.split(np.concatenate([x, h], 1) @ kernel + bias, 4, axis=1)
        c = c * _sigmoid(f + 1.0) + _sigmoid(i) * np.tanh(j)
        h = np.tanh(c) * _sigmoid(o)
        return h, (c, h)

    return step


def test_rnn_decoder_with_loop_function_equals_the_loop_run_by_hand(rng):
    inputs = rng.randn(4, BATCH, 3).astype(np.float32)
    c0, h0 = rng.randn(2, BATCH, 3).astype(np.float32)
    calls = []

    def loop_function(prev, i):  # the next input from the previous output and the step number
        calls.append((i, tf.compat.v1.get_variable_scope().name, tf.compat.v1.get_variable_scope().reuse))
        return tf.tanh(prev) * float(i)

    with graph_session() as sess:
        cell = tfstate.BasicLSTMCell(3)
        outputs, state = S.rnn_decoder(list(inputs), tfstate.LSTMStateTuple(c0, h0), cell, loop_function)
        assert _names() == ["rnn_decoder/basic_lstm_cell/kernel", "rnn_decoder/basic_lstm_cell/bias"]
        values = randomize_variables(sess)
        outputs, state = sess.run((outputs, state))
    assert calls == [
        (1, "rnn_decoder/loop_function", True),
        (2, "rnn_decoder/loop_function", True),
        (3, "rnn_decoder/loop_function", True),
    ]
    step = _numpy_basic_lstm(values, "rnn_decoder/basic_lstm_cell")
    expected_state, x = (c0, h0), inputs[0]
    for i in range(4):
        out, expected_state = step(x, expected_state)
        np.testing.assert_allclose(outputs[i], out, atol=1e-5)
        x = np.tanh(out) * (i + 1)
    np.testing.assert_allclose(state.c, expected_state[0], atol=1e-5)
    np.testing.assert_allclose(state.h, expected_state[1], atol=1e-5)


def test_embedding_rnn_decoder_without_update_embedding_passes_gradient_only_to_the_go_symbols(rng):
    go = np.array([1, 1, 2], np.int32)
    with graph_session() as sess:
        cell = tfstate.GRUCell(3)
        outputs, _ = S.embedding_rnn_decoder(
            [tf.constant(go)] + _symbols(rng, 3, 6),
            tf.zeros([BATCH, 3]),
            tfstate.rnn_cell.OutputProjectionWrapper(cell, 6),
            6,
            4,
            feed_previous=True,
            update_embedding_for_previous=False,
        )
        embedding = [v for v in tf.compat.v1.global_variables() if v.op.name == "embedding_rnn_decoder/embedding"]
        gradient = tf.convert_to_tensor(tf.gradients(tf.add_n([tf.reduce_sum(o * o) for o in outputs]), embedding)[0])
        randomize_variables(sess)
        gradient = sess.run(gradient)
    assert np.abs(gradient[[1, 2]]).sum(1).min() > 0
    np.testing.assert_array_equal(gradient[[0, 3, 4, 5]], 0)


# ---------------------------------------------------------------- attention_decoder


def _numpy_attention_decoder(values, inputs, initial_state, states, num_heads, initial_state_attention, step):
    """TF1's attention decoder equations (module docstring of tfstate.legacy_seq2seq.attention), in NumPy."""
    p = "attention_decoder/"
    features = [states @ values[p + f"AttnW_{a}:0"][0, 0] for a in range(num_heads)]

    def attention(state):
        query = np.concatenate(state, 1)
        reads = []
        for a in range(num_heads):
            y = query @ values[p + f"Attention_{a}/kernel:0"] + values[p + f"Attention_{a}/bias:0"]
            scores = (values[p + f"AttnV_{a}:0"] * np.tanh(features[a] + y[:, None, :])).sum(-1)
            reads.append((_softmax(scores)[:, :, None] * states).sum(1))
        return reads

    reads = attention(initial_state) if initial_state_attention else [np.zeros_like(states[:, 0])] * num_heads
    state, outputs = initial_state, []
    for inp in inputs:
        x = np.concatenate([inp] + reads, 1) @ values[p + "kernel:0"] + values[p + "bias:0"]
        cell_output, state = step(x, state)
        reads = attention(state)
        merged = np.concatenate([cell_output] + reads, 1)
        outputs.append(merged @ values[p + "AttnOutputProjection/kernel:0"] + values[p + "AttnOutputProjection/bias:0"])
    return outputs, state


@pytest.mark.parametrize("num_heads", [1, 2])
@pytest.mark.parametrize("initial_state_attention", [False, True])
def test_attention_decoder_equals_hand_computed_scores_softmax_and_reads(rng, num_heads, initial_state_attention):
    inputs = rng.randn(3, BATCH, 2).astype(np.float32)
    states = rng.randn(BATCH, 4, 5).astype(np.float32)
    c0, h0 = rng.randn(2, BATCH, 3).astype(np.float32)
    with graph_session() as sess:
        outputs, state = S.attention_decoder(
            list(inputs),
            tfstate.LSTMStateTuple(c0, h0),
            states,
            tfstate.BasicLSTMCell(3),
            output_size=6,
            num_heads=num_heads,
            initial_state_attention=initial_state_attention,
        )
        names = _names()
        values = randomize_variables(sess)
        outputs, state = sess.run((outputs, state))
    heads = [f"attention_decoder/{kind}_{a}" for a in range(num_heads) for kind in ("AttnW", "AttnV")]
    queries = [f"attention_decoder/Attention_{a}/{part}" for a in range(num_heads) for part in ("kernel", "bias")]
    cell = [
        "attention_decoder/kernel",
        "attention_decoder/bias",
        "attention_decoder/basic_lstm_cell/kernel",
        "attention_decoder/basic_lstm_cell/bias",
    ]
    projection = ["attention_decoder/AttnOutputProjection/kernel", "attention_decoder/AttnOutputProjection/bias"]
    # TF1's creation order: with initial_state_attention the heads' query weights come before the input merge
    assert names == heads + (queries + cell if initial_state_attention else cell + queries) + projection
    assert values["attention_decoder/kernel:0"].shape == (2 + 5 * num_heads, 2)
    expected, expected_state = _numpy_attention_decoder(
        values,
        inputs,
        (c0, h0),
        states,
        num_heads,
        initial_state_attention,
        _numpy_basic_lstm(values, "attention_decoder/basic_lstm_cell"),
    )
    for actual, wanted in zip(outputs, expected):
        np.testing.assert_allclose(actual, wanted, atol=1e-5)
    np.testing.assert_allclose(state.h, expected_state[1], atol=1e-5)


def test_attention_decoder_reads_an_attention_length_known_only_at_run_time(rng):
    states = rng.randn(BATCH, 4, 5).astype(np.float32)
    with graph_session() as sess:
        fed = tf.compat.v1.placeholder(tf.float32, [None, None, 5])
        inputs = [tf.constant(rng.randn(BATCH, 2).astype(np.float32)) for _ in range(2)]
        static, _ = S.attention_decoder(inputs, tf.zeros([BATCH, 3]), states, tfstate.GRUCell(3))
        with tf.compat.v1.variable_scope(tf.compat.v1.get_variable_scope(), reuse=True):
            dynamic, _ = S.attention_decoder(inputs, tf.zeros([BATCH, 3]), fed, tfstate.GRUCell(3))
        randomize_variables(sess)
        np.testing.assert_allclose(*sess.run((static, dynamic), {fed: states}), atol=1e-6)


def test_attention_decoder_names_what_is_wrong_with_its_input():
    with graph_session():
        states = tf.zeros([BATCH, 4, 5])
        inputs = [tf.zeros([BATCH, 2])]
        with pytest.raises(ValueError, match="at least one decoder input; got an empty list"):
            S.attention_decoder([], tf.zeros([BATCH, 3]), states, tfstate.GRUCell(3))
        with pytest.raises(ValueError, match=r"num_heads >= 1 .* got 0"):
            S.attention_decoder(inputs, tf.zeros([BATCH, 3]), states, tfstate.GRUCell(3), num_heads=0)
        with pytest.raises(ValueError, match=r"known depth; got shape \(None, 4, None\)"):
            S.attention_decoder(
                inputs, tf.zeros([BATCH, 3]), tf.compat.v1.placeholder(tf.float32, [None, 4, None]), tfstate.GRUCell(3)
            )
        with pytest.raises(ValueError, match=r"input 0 has shape \(3, None\)"):
            S.attention_decoder(
                [tf.compat.v1.placeholder(tf.float32, [BATCH, None])], tf.zeros([BATCH, 3]), states, tfstate.GRUCell(3)
            )
        assert tf.compat.v1.global_variables() == []


def test_output_projection_of_the_wrong_shape_is_named():
    with graph_session():
        with pytest.raises(ValueError, match=r"W of shape \[output_size, 6\] .* got W \(3, 5\) and B \(5,\)"):
            S.embedding_attention_decoder(
                [tf.zeros([BATCH], tf.int32)],
                tf.zeros([BATCH, 3]),
                tf.zeros([BATCH, 2, 3]),
                tfstate.GRUCell(3),
                6,
                2,
                output_projection=(tf.zeros([3, 5]), tf.zeros([5])),
            )


# ---------------------------------------------------------------- whole models: TF1's variable names


def _gru(prefix):
    return [
        f"{prefix}/gru_cell/{part}" for part in ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")
    ]


def _projection(prefix):
    return _gru(f"{prefix}/output_projection_wrapper") + [
        f"{prefix}/output_projection_wrapper/kernel",
        f"{prefix}/output_projection_wrapper/bias",
    ]


def _floats(rng, steps):
    return [tf.constant(rng.randn(BATCH, 2).astype(np.float32)) for _ in range(steps)]


MODEL_NAMES = {
    "basic_rnn_seq2seq": (
        lambda rng: S.basic_rnn_seq2seq(_floats(rng, 3), _floats(rng, 2), tfstate.GRUCell(3)),
        _gru("basic_rnn_seq2seq/rnn") + _gru("basic_rnn_seq2seq/rnn_decoder"),
    ),
    "tied_rnn_seq2seq": (
        lambda rng: S.tied_rnn_seq2seq(_floats(rng, 3), _floats(rng, 2), tfstate.GRUCell(3)),
        _gru("combined_tied_rnn_seq2seq/tied_rnn_seq2seq"),
    ),
    "embedding_rnn_seq2seq": (
        lambda rng: S.embedding_rnn_seq2seq(_symbols(rng, 3, 5), _symbols(rng, 2, 6), tfstate.GRUCell(3), 5, 6, 2),
        ["embedding_rnn_seq2seq/rnn/embedding_wrapper/embedding"]
        + _gru("embedding_rnn_seq2seq/rnn/embedding_wrapper")
        + ["embedding_rnn_seq2seq/embedding_rnn_decoder/embedding"]
        + _projection("embedding_rnn_seq2seq/embedding_rnn_decoder/rnn_decoder"),
    ),
    "embedding_tied_rnn_seq2seq": (
        lambda rng: S.embedding_tied_rnn_seq2seq(
            _symbols(rng, 3, 5), _symbols(rng, 2, 5), tfstate.GRUCell(3), 5, 2, num_decoder_symbols=4
        ),
        ["embedding_tied_rnn_seq2seq/embedding"]
        + _projection("embedding_tied_rnn_seq2seq/combined_tied_rnn_seq2seq/tied_rnn_seq2seq"),
    ),
    "embedding_attention_seq2seq": (
        lambda rng: S.embedding_attention_seq2seq(
            _symbols(rng, 3, 5), _symbols(rng, 2, 6), tfstate.GRUCell(3), 5, 6, 2
        ),
        ["embedding_attention_seq2seq/rnn/embedding_wrapper/embedding"]
        + _gru("embedding_attention_seq2seq/rnn/embedding_wrapper")
        + ["embedding_attention_seq2seq/embedding_attention_decoder/embedding"]
        + [
            f"embedding_attention_seq2seq/embedding_attention_decoder/attention_decoder/{name}"
            for name in ("AttnW_0", "AttnV_0", "kernel", "bias")
        ]
        + _projection("embedding_attention_seq2seq/embedding_attention_decoder/attention_decoder")
        + [
            f"embedding_attention_seq2seq/embedding_attention_decoder/attention_decoder/{name}"
            for name in (
                "Attention_0/kernel",
                "Attention_0/bias",
                "AttnOutputProjection/kernel",
                "AttnOutputProjection/bias",
            )
        ],
    ),
    "one2many_rnn_seq2seq": (
        lambda rng: S.one2many_rnn_seq2seq(
            _symbols(rng, 3, 5),
            {"fr": _symbols(rng, 2, 4), "de": _symbols(rng, 3, 6)},
            tfstate.GRUCell(3),
            {"fr": tfstate.GRUCell(3), "de": tfstate.GRUCell(3)},
            5,
            {"fr": 4, "de": 6},
            2,
        ),
        ["one2many_rnn_seq2seq/rnn/embedding_wrapper/embedding"]
        + _gru("one2many_rnn_seq2seq/rnn/embedding_wrapper")
        + [
            name
            for task in ("fr", "de")
            for name in [f"one2many_rnn_seq2seq/one2many_decoder_{task}/embedding_rnn_decoder/embedding"]
            + _projection(f"one2many_rnn_seq2seq/one2many_decoder_{task}/embedding_rnn_decoder/rnn_decoder")
        ],
    ),
}


@pytest.mark.parametrize("model", sorted(MODEL_NAMES))
def test_models_make_tf1s_variables(rng, model):
    build, expected = MODEL_NAMES[model]
    with graph_session():
        build(rng)
        assert _names() == expected


def test_embedding_attention_seq2seq_variable_shapes_match_tf1s():
    with graph_session():
        cell = tfstate.rnn_cell.MultiRNNCell([tfstate.GRUCell(4), tfstate.GRUCell(4)])
        w = tf.compat.v1.get_variable("proj_w", [4, 7])
        b = tf.compat.v1.get_variable("proj_b", [7])
        S.embedding_attention_seq2seq(
            [tf.zeros([2], tf.int32)] * 3,
            [tf.zeros([2], tf.int32)] * 2,
            cell,
            9,
            7,
            3,
            num_heads=2,
            output_projection=(w, b),
        )
        shapes = {v.op.name: v.shape.as_list() for v in tf.compat.v1.global_variables()}
    encoder = "embedding_attention_seq2seq/rnn/embedding_wrapper/"
    decoder = "embedding_attention_seq2seq/embedding_attention_decoder/"
    attention = decoder + "attention_decoder/"
    assert shapes == {
        "proj_w": [4, 7],
        "proj_b": [7],
        encoder + "embedding": [9, 3],
        encoder + "multi_rnn_cell/cell_0/gru_cell/gates/kernel": [7, 8],
        encoder + "multi_rnn_cell/cell_0/gru_cell/gates/bias": [8],
        encoder + "multi_rnn_cell/cell_0/gru_cell/candidate/kernel": [7, 4],
        encoder + "multi_rnn_cell/cell_0/gru_cell/candidate/bias": [4],
        encoder + "multi_rnn_cell/cell_1/gru_cell/gates/kernel": [8, 8],
        encoder + "multi_rnn_cell/cell_1/gru_cell/gates/bias": [8],
        encoder + "multi_rnn_cell/cell_1/gru_cell/candidate/kernel": [8, 4],
        encoder + "multi_rnn_cell/cell_1/gru_cell/candidate/bias": [4],
        decoder + "embedding": [7, 3],
        attention + "AttnW_0": [1, 1, 4, 4],
        attention + "AttnV_0": [4],
        attention + "AttnW_1": [1, 1, 4, 4],
        attention + "AttnV_1": [4],
        attention + "kernel": [3 + 2 * 4, 3],
        attention + "bias": [3],
        attention + "multi_rnn_cell/cell_0/gru_cell/gates/kernel": [7, 8],
        attention + "multi_rnn_cell/cell_0/gru_cell/gates/bias": [8],
        attention + "multi_rnn_cell/cell_0/gru_cell/candidate/kernel": [7, 4],
        attention + "multi_rnn_cell/cell_0/gru_cell/candidate/bias": [4],
        attention + "multi_rnn_cell/cell_1/gru_cell/gates/kernel": [8, 8],
        attention + "multi_rnn_cell/cell_1/gru_cell/gates/bias": [8],
        attention + "multi_rnn_cell/cell_1/gru_cell/candidate/kernel": [8, 4],
        attention + "multi_rnn_cell/cell_1/gru_cell/candidate/bias": [4],
        attention + "Attention_0/kernel": [8, 4],
        attention + "Attention_0/bias": [4],  # query: both layers' states
        attention + "Attention_1/kernel": [8, 4],
        attention + "Attention_1/bias": [4],
        attention + "AttnOutputProjection/kernel": [4 + 2 * 4, 4],
        attention + "AttnOutputProjection/bias": [4],
    }


# ---------------------------------------------------------------- feed_previous: greedy decoding


def _projection_variables():
    return tf.compat.v1.get_variable("proj_w", [4, 6]), tf.compat.v1.get_variable("proj_b", [6])


GREEDY_MODELS = {
    "embedding_rnn_seq2seq_projected": lambda enc, dec, cell, feed, projection: S.embedding_rnn_seq2seq(
        enc, dec, cell, 5, 6, 3, output_projection=projection, feed_previous=feed
    ),
    "embedding_tied_rnn_seq2seq": lambda enc, dec, cell, feed, projection: S.embedding_tied_rnn_seq2seq(
        enc, dec, cell, 6, 3, feed_previous=feed
    ),
    "embedding_attention_seq2seq": lambda enc, dec, cell, feed, projection: S.embedding_attention_seq2seq(
        enc, dec, cell, 5, 6, 3, num_heads=2, feed_previous=feed
    ),
    "embedding_attention_seq2seq_projected": lambda enc, dec, cell, feed, projection: S.embedding_attention_seq2seq(
        enc, dec, cell, 5, 6, 3, output_projection=projection, feed_previous=feed, initial_state_attention=True
    ),
    "one2many_rnn_seq2seq": lambda enc, dec, cell, feed, projection: tuple(
        part["task"]
        for part in S.one2many_rnn_seq2seq(
            enc, {"task": dec}, tfstate.GRUCell(4), {"task": cell}, 5, {"task": 6}, 3, feed_previous=feed
        )
    ),
}


@pytest.mark.parametrize("model", sorted(GREEDY_MODELS))
def test_feed_previous_decodes_greedily_and_a_tensor_switches_per_run(rng, model):
    """Greedy outputs equal teacher forcing on their own argmax symbols (output i depends on inputs <= i only),
    and a tensor feed_previous gives either path, with no variables of its own."""
    build = GREEDY_MODELS[model]
    go = rng.randint(6, size=BATCH).astype(np.int32)
    with graph_session() as sess:
        encoder = _symbols(rng, 3, 5)
        fed = tf.compat.v1.placeholder(tf.int32, [4, BATCH])
        decoder = tf.unstack(fed)
        projection = _projection_variables() if model.endswith("projected") else None
        cell = tfstate.GRUCell(4)
        forced, _ = build(encoder, decoder, cell, False, projection)
        names = _names()
        with tf.compat.v1.variable_scope(tf.compat.v1.get_variable_scope(), reuse=True):
            greedy, _ = build(encoder, decoder, cell, True, projection)
            switch = tf.compat.v1.placeholder(tf.bool, [])
            either, _ = build(encoder, decoder, cell, switch, projection)
        assert _names() == names
        randomize_variables(sess)
        feed = {fed: np.stack([go] + [rng.randint(6, size=BATCH) for _ in range(3)])}
        greedy_outputs = sess.run(greedy, feed)
        logits = [
            out @ sess.run(projection[0]) + sess.run(projection[1]) if projection else out for out in greedy_outputs
        ]
        by_hand = np.stack([go] + [np.argmax(step, 1) for step in logits[:-1]])
        np.testing.assert_allclose(sess.run(forced, {fed: by_hand}), greedy_outputs, atol=1e-5)
        for flag, expected in ((True, greedy), (False, forced)):
            np.testing.assert_allclose(*sess.run((either, expected), {**feed, switch: flag}), atol=1e-5)


# ---------------------------------------------------------------- model_with_buckets

BUCKETS = [(2, 3), (4, 5)]


def _bucket_values(rng, vocab=6):
    """Values for the encoder inputs, decoder inputs, targets and weights of the longest bucket."""
    return (
        [rng.randint(vocab, size=BATCH) for _ in range(4)],
        [rng.randint(vocab, size=BATCH) for _ in range(5)],
        [rng.randint(vocab, size=BATCH) for _ in range(5)],
        [rng.rand(BATCH) for _ in range(5)],
    )


def _bucket_inputs(values):
    """Placeholders in the current graph for `_bucket_values`, and the feed that gives them those values."""
    lists = tuple(
        [tf.compat.v1.placeholder(tf.float32 if kind == 3 else tf.int32, [None]) for _ in part]
        for kind, part in enumerate(values)
    )
    feed = {p: v for placeholders, part in zip(lists, values) for p, v in zip(placeholders, part)}
    return lists + (feed,)


def _attention_seq2seq(cell):
    return lambda encoder, decoder: S.embedding_attention_seq2seq(encoder, decoder, cell, 6, 6, 3, num_heads=2)


def test_buckets_share_one_variable_set_and_each_loss_equals_its_bucket_built_alone(rng):
    bucket_values = _bucket_values(rng)
    with graph_session() as sess:
        encoder, decoder, targets, weights, feed = _bucket_inputs(bucket_values)
        cell = tfstate.rnn_cell.MultiRNNCell([tfstate.GRUCell(4), tfstate.GRUCell(4)])
        outputs, losses = S.model_with_buckets(encoder, decoder, targets, weights, BUCKETS, _attention_seq2seq(cell))
        names = _names()
        values = randomize_variables(sess)
        bucket_losses = sess.run(losses, feed)
        assert [len(o) for o in outputs] == [3, 5]
    assert len(set(names)) == len(names) == 32
    for (encoder_length, decoder_length), expected in zip(BUCKETS, bucket_losses):
        with graph_session() as sess:
            encoder, decoder, targets, weights, feed = _bucket_inputs(bucket_values)
            cell = tfstate.rnn_cell.MultiRNNCell([tfstate.GRUCell(4), tfstate.GRUCell(4)])
            alone, _ = _attention_seq2seq(cell)(encoder[:encoder_length], decoder[:decoder_length])
            assert _names() == names
            loss = S.sequence_loss(alone, targets[:decoder_length], weights[:decoder_length])
            load_variables(sess, values)
            np.testing.assert_allclose(sess.run(loss, feed), expected, rtol=1e-5)


def test_encoder_gets_its_own_weights_from_the_deep_copy_and_every_bucket_reuses_them(rng):
    with graph_session():
        encoder, decoder, targets, weights, _ = _bucket_inputs(_bucket_values(rng))
        cell = tfstate.rnn_cell.MultiRNNCell([tfstate.GRUCell(4), tfstate.LSTMCell(4)])
        S.model_with_buckets(encoder, decoder, targets, weights, BUCKETS, _attention_seq2seq(cell))
        decoder_weights = cell.variables
        encoder_weights = [
            v for v in tf.compat.v1.global_variables() if "/rnn/embedding_wrapper/multi_rnn_cell" in v.name
        ]
    assert all(
        v.op.name.startswith(
            "embedding_attention_seq2seq/embedding_attention_decoder/attention_decoder/"
            "output_projection_wrapper/multi_rnn_cell/"
        )
        for v in decoder_weights
    )
    assert [v.op.name.split("multi_rnn_cell/")[1] for v in encoder_weights] == [
        v.op.name.split("multi_rnn_cell/")[1] for v in decoder_weights
    ]
    assert not {id(v) for v in encoder_weights} & {id(v) for v in decoder_weights}


def test_per_example_loss_gives_each_bucket_a_loss_per_sequence(rng):
    with graph_session() as sess:
        encoder, decoder, targets, weights, feed = _bucket_inputs(_bucket_values(rng))
        seq2seq = _attention_seq2seq(tfstate.GRUCell(4))
        outputs, per_example = S.model_with_buckets(
            encoder, decoder, targets, weights, BUCKETS, seq2seq, per_example_loss=True
        )
        expected = [S.sequence_loss_by_example(o, targets[:n], weights[:n]) for o, (_, n) in zip(outputs, BUCKETS)]
        randomize_variables(sess)
        actual, expected = sess.run((per_example, expected), feed)
    assert [a.shape for a in actual] == [(BATCH,), (BATCH,)]
    np.testing.assert_allclose(actual, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "short, message",
    [
        ("encoder", "needs at least 4 encoder_inputs .* got 3"),
        ("decoder", "needs at least 5 decoder_inputs .* got 4"),
        ("targets", "needs at least 5 targets .* got 4"),
        ("weights", "needs at least 5 weights .* got 4"),
    ],
)
def test_model_with_buckets_names_the_list_shorter_than_the_longest_bucket(rng, short, message):
    with graph_session():
        encoder, decoder, targets, weights, _ = _bucket_inputs(_bucket_values(rng))
        lists = {"encoder": encoder, "decoder": decoder, "targets": targets, "weights": weights}
        lists[short] = lists[short][:-1]
        with pytest.raises(ValueError, match=message):
            S.model_with_buckets(
                lists["encoder"],
                lists["decoder"],
                lists["targets"],
                lists["weights"],
                BUCKETS,
                _attention_seq2seq(tfstate.GRUCell(4)),
            )
        assert tf.compat.v1.global_variables() == []


# ---------------------------------------------------------------- every tfstate cell, fused ones included

FUSED_AND_CORE = {
    "lstm_block_cell": (lambda: tfstate.rnn_cell.LSTMBlockCell(4), lambda: tfstate.LSTMCell(4), {}),
    "gru_block_cell_v2": (lambda: tfstate.rnn_cell.GRUBlockCellV2(4), lambda: tfstate.GRUCell(4), {}),
    "lstm_block_fused_cell": (
        lambda: tfstate.rnn_cell.LSTMBlockFusedCell(4),
        lambda: tfstate.LSTMCell(4),
        {"lstm_fused_cell": "lstm_cell"},
    ),
    "fused_multi_rnn_cell": (
        lambda: tfstate.rnn_cell.FusedMultiRNNCell(
            [tfstate.rnn_cell.LSTMBlockCell(4), tfstate.rnn_cell.GRUBlockCellV2(4)]
        ),
        lambda: tfstate.rnn_cell.MultiRNNCell([tfstate.LSTMCell(4), tfstate.GRUCell(4)]),
        {},
    ),
}


@pytest.mark.parametrize("kind", sorted(FUSED_AND_CORE))
def test_fused_cells_give_the_buckets_of_their_core_twins(rng, kind):
    make_fused, make_core, renames = FUSED_AND_CORE[kind]
    bucket_values = _bucket_values(rng)
    results = []
    for make in (make_core, make_fused):
        with graph_session() as sess:
            encoder, decoder, targets, weights, feed = _bucket_inputs(bucket_values)
            outputs, losses = S.model_with_buckets(
                encoder, decoder, targets, weights, BUCKETS, _attention_seq2seq(make())
            )
            if not results:
                values = randomize_variables(sess)
            else:
                for old, new in renames.items():
                    values = {name.replace(new, old): value for name, value in values.items()}
                load_variables(sess, values)
            results.append(sess.run((outputs, losses), feed))
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-5)
    for fused, core in zip(results[1][0][1], results[0][0][1]):
        np.testing.assert_allclose(fused, core, atol=1e-5)


# ---------------------------------------------------------------- training and graph mode


def test_a_few_training_steps_lower_the_bucketed_loss(rng):
    """Learn to copy a sequence: the first bucket's loss falls well below where it started."""
    with graph_session() as sess:
        encoder, decoder, targets, weights, _ = _bucket_inputs(_bucket_values(rng))
        _, losses = S.model_with_buckets(
            encoder, decoder, targets, weights, BUCKETS, _attention_seq2seq(tfstate.GRUCell(8))
        )
        train = tf.compat.v1.train.AdamOptimizer(0.05).minimize(losses[0])
        sess.run(tf.compat.v1.global_variables_initializer())
        symbols = rng.randint(2, 6, size=(16, 2))
        feed = {
            encoder[0]: symbols[:, 0],
            encoder[1]: symbols[:, 1],
            decoder[0]: np.ones(16),
            decoder[1]: symbols[:, 0],
            decoder[2]: symbols[:, 1],
            targets[0]: symbols[:, 0],
            targets[1]: symbols[:, 1],
            targets[2]: np.zeros(16),
            weights[0]: np.ones(16),
            weights[1]: np.ones(16),
            weights[2]: np.ones(16),
        }
        first = sess.run(losses[0], feed)
        for _ in range(40):
            sess.run(train, feed)
        assert sess.run(losses[0], feed) < 0.3 * first


@pytest.mark.parametrize(
    "build",
    [
        lambda: S.rnn_decoder([tf.zeros([1, 2])], tf.zeros([1, 3]), tfstate.GRUCell(3)),
        lambda: S.model_with_buckets([0], [0], [0], [1.0], [(1, 1)], None),
    ],
    ids=["rnn_decoder", "model_with_buckets"],
)
def test_graph_builders_refuse_eager_execution_and_name_the_fix(build):
    assert tf.executing_eagerly()
    with pytest.raises(RuntimeError, match="disable_eager_execution"):
        build()
