"""tfstate.seq2seq decoding and losses against independent oracles: NumPy, dynamic_rnn, hand-written loops,
and an exhaustive search over a tiny vocabulary for the beam search."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from conftest import graph_session, load_variables, randomize_variables

import tfstate
from tfstate import seq2seq


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


REDUCTIONS = {
    # name: (sequence_loss flags, NumPy reduction of the weighted cross-entropy `c` with weights `w`)
    "average_both": ({}, lambda c, w: c.sum() / w.sum()),
    "average_time": (dict(average_across_batch=False), lambda c, w: c.sum(1) / w.sum(1)),
    "average_batch": (dict(average_across_timesteps=False), lambda c, w: c.sum(0) / w.sum(0)),
    "none": (dict(average_across_timesteps=False, average_across_batch=False), lambda c, w: c),
    "sum_both": (
        dict(average_across_timesteps=False, average_across_batch=False, sum_over_timesteps=True, sum_over_batch=True),
        lambda c, w: c.sum() / np.count_nonzero(w),
    ),
    "sum_time": (
        dict(average_across_timesteps=False, average_across_batch=False, sum_over_timesteps=True),
        lambda c, w: c.sum(1) / np.count_nonzero(w, 1),
    ),
    "sum_batch": (
        dict(average_across_timesteps=False, average_across_batch=False, sum_over_batch=True),
        lambda c, w: c.sum(0) / np.count_nonzero(w, 0),
    ),
    "average_time_sum_batch": (
        dict(average_across_batch=False, sum_over_batch=True),
        lambda c, w: c.sum(1) / w.sum(1),
    ),  # TF 1.15 reduces the averaged axis only
}


def test_sequence_loss_equals_numpy_for_every_reduction(rng):
    logits, targets = rng.randn(3, 4, 5), rng.randint(0, 5, [3, 4])
    weights = np.array([[1, 1, 0.5, 0], [1, 0, 0, 0], [2, 1, 1, 1]])
    crossent = -np.take_along_axis(_log_softmax(logits), targets[:, :, None], 2)[:, :, 0] * weights
    with graph_session() as sess:
        losses = {
            name: seq2seq.sequence_loss(logits, targets, weights, **flags) for name, (flags, _) in REDUCTIONS.items()
        }
        doubled = seq2seq.sequence_loss(
            logits,
            targets,
            weights,
            softmax_loss_function=lambda labels, logits: tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=2 * logits
            ),
        )
        no_weight = seq2seq.sequence_loss(logits, targets, np.zeros([3, 4]))
        losses, doubled, no_weight = sess.run([losses, doubled, no_weight])
        with pytest.raises(ValueError, match=r"logits of shape \[batch, time, num_classes\]; got shape \(3, 4\)"):
            seq2seq.sequence_loss(logits[:, :, 0], targets, weights)
        with pytest.raises(ValueError, match="average_across_batch and sum_over_batch cannot both be True"):
            seq2seq.sequence_loss(logits, targets, weights, sum_over_batch=True)
    for name, (_, reduce) in REDUCTIONS.items():
        np.testing.assert_allclose(losses[name], reduce(crossent, weights), rtol=1e-10, err_msg=name)
    doubled_crossent = -np.take_along_axis(_log_softmax(2 * logits), targets[:, :, None], 2)[:, :, 0] * weights
    np.testing.assert_allclose(doubled, doubled_crossent.sum() / weights.sum(), rtol=1e-10)
    assert no_weight == 0


def _np_gather_tree(step_ids, parent_ids, max_lengths, end_token):
    """TF1's GatherTree kernel, loop for loop."""
    max_time, batch, beams = step_ids.shape
    result = np.full_like(step_ids, end_token)
    for b, w in itertools.product(range(batch), range(beams)):
        length = min(max_time, max_lengths[b])
        if length <= 0:
            continue
        parent = w
        for t in range(length - 1, -1, -1):
            result[t, b, w] = step_ids[t, b, parent]
            parent = parent_ids[t, b, parent]
        ended = np.cumsum(result[:length, b, w] == end_token) - (result[:length, b, w] == end_token) > 0
        result[:length, b, w][ended] = end_token
    return result


def test_gather_tree_and_tile_batch_equal_numpy(rng):
    step_ids = rng.randint(0, 5, [6, 4, 3]).astype(np.int32)
    parent_ids = rng.randint(0, 3, [6, 4, 3]).astype(np.int32)
    max_lengths = np.array([6, 3, 9, 0], np.int32)
    nested = (rng.randn(2, 3), (rng.randn(2), rng.randn(2, 1, 4)))
    with graph_session() as sess:
        beams, tiled = sess.run(
            [seq2seq.gather_tree(step_ids, parent_ids, max_lengths, end_token=4), seq2seq.tile_batch(nested, 3)]
        )
        with pytest.raises(ValueError, match=r"known rank >= 1 .* got shape \(\)"):
            seq2seq.tile_batch(tf.constant(1.0), 2)
    np.testing.assert_array_equal(beams, _np_gather_tree(step_ids, parent_ids, max_lengths, 4))
    for actual, expected in zip(tf.nest.flatten(tiled), tf.nest.flatten(nested)):
        np.testing.assert_array_equal(actual, np.repeat(expected, 3, axis=0))


def test_training_decoder_equals_dynamic_rnn_over_the_same_cell_and_output_layer(rng):
    inputs, lengths = rng.randn(3, 4, 2).astype(np.float32), np.array([3, 1, 2])
    with graph_session() as sess:
        cell, layer = tfstate.LSTMCell(4), tfstate.layers.Dense(5)
        initial = tfstate.LSTMStateTuple(*(tf.constant(rng.randn(3, 4), tf.float32) for _ in range(2)))
        x = tf.constant(inputs)

        def decode(helper, **kwargs):
            return seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, helper, initial, output_layer=layer), **kwargs)

        plain, _, plain_lengths = decode(seq2seq.TrainingHelper(x, lengths))
        imputed, imputed_state, _ = decode(seq2seq.TrainingHelper(x, lengths), impute_finished=True)
        time_major, _, _ = decode(
            seq2seq.TrainingHelper(tf.transpose(x, [1, 0, 2]), lengths, time_major=True), output_time_major=True
        )
        rnn_outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, x, initial_state=initial)
        masked_outputs, masked_state = tf.compat.v1.nn.dynamic_rnn(cell, x, lengths, initial_state=initial)
        names = [v.op.name for v in tf.compat.v1.global_variables()]
        randomize_variables(sess)
        r = sess.run(
            dict(
                plain=plain,
                lengths=plain_lengths,
                imputed=imputed,
                state=imputed_state,
                time_major=time_major.rnn_output,
                expected=layer(rnn_outputs),
                masked=layer(masked_outputs),
                masked_state=masked_state,
            )
        )
    steps = lengths.max()
    valid = np.arange(steps)[None, :] < lengths[:, None]
    np.testing.assert_allclose(r["plain"].rnn_output, r["expected"][:, :steps], atol=1e-6)
    np.testing.assert_array_equal(r["plain"].sample_id, r["plain"].rnn_output.argmax(-1))
    np.testing.assert_array_equal(r["lengths"], lengths)
    np.testing.assert_allclose(
        r["imputed"].rnn_output, np.where(valid[:, :, None], r["masked"][:, :steps], 0), atol=1e-6
    )
    np.testing.assert_allclose(np.array(r["state"]), np.array(r["masked_state"]), atol=1e-6)
    np.testing.assert_allclose(r["time_major"], r["plain"].rnn_output.transpose(1, 0, 2), atol=1e-6)
    assert names == ["decoder/lstm_cell/kernel", "decoder/lstm_cell/bias", "decoder/dense/kernel", "decoder/dense/bias"]


STEPS, VOCAB, UNITS = 5, 5, 4


def test_greedy_decoding_equals_an_argmax_feedback_loop_and_end_token_stops_rows(rng):
    embeddings = rng.randn(VOCAB, 3).astype(np.float32)
    with graph_session() as sess:
        cell, layer = tfstate.GRUCell(UNITS), tfstate.layers.Dense(VOCAB)
        initial = tf.constant(rng.randn(3, UNITS), tf.float32)
        start, end_token = tf.fill([3], 0), tf.compat.v1.placeholder(tf.int32, [])
        x, state, loop_ids, loop_logits, loop_states = tf.nn.embedding_lookup(embeddings, start), initial, [], [], []
        for _ in range(STEPS):  # the oracle: feed back the embedding of the argmax by hand
            output, state = cell(x, state)
            loop_logits.append(layer(output))
            loop_ids.append(tf.argmax(loop_logits[-1], -1, output_type=tf.int32))
            loop_states.append(state)
            x = tf.nn.embedding_lookup(embeddings, loop_ids[-1])

        def decode(helper, **kwargs):
            return seq2seq.dynamic_decode(
                seq2seq.BasicDecoder(cell, helper, initial, output_layer=layer), maximum_iterations=STEPS, **kwargs
            )

        greedy = decode(seq2seq.GreedyEmbeddingHelper(embeddings, start, end_token))
        imputed = decode(seq2seq.GreedyEmbeddingHelper(embeddings, start, end_token), impute_finished=True)
        sampled = decode(seq2seq.SampleEmbeddingHelper(embeddings, start, end_token, softmax_temperature=1e-4, seed=3))
        custom = decode(
            seq2seq.InferenceHelper(
                lambda outputs: tf.argmax(outputs, -1, output_type=tf.int32),
                [],
                tf.int32,
                tf.nn.embedding_lookup(embeddings, start),
                lambda ids: tf.equal(ids, end_token),
                lambda ids: tf.nn.embedding_lookup(embeddings, ids),
            )
        )
        randomize_variables(sess, scale=1.0)
        ids, logits, states = sess.run([tf.stack(loop_ids, 1), tf.stack(loop_logits, 1), tf.stack(loop_states, 1)])
        end = ids[0, 1]
        greedy, imputed, sampled, custom = sess.run([greedy, imputed, sampled, custom], {end_token: end})
    is_end = ids == end
    lengths = np.where(is_end.any(1), is_end.argmax(1) + 1, STEPS)
    steps = lengths.max()
    valid = np.arange(steps)[None, :] < lengths[:, None]
    assert lengths[0] <= 2 and lengths.min() < steps
    for outputs, final_lengths in (greedy[::2], sampled[::2], custom[::2]):
        np.testing.assert_array_equal(outputs.sample_id, ids[:, :steps])
        np.testing.assert_allclose(outputs.rnn_output, logits[:, :steps], atol=1e-5)
        np.testing.assert_array_equal(final_lengths, lengths)
    imputed_outputs, imputed_state, _ = imputed
    np.testing.assert_allclose(imputed_outputs.rnn_output, np.where(valid[:, :, None], logits[:, :steps], 0), atol=1e-5)
    np.testing.assert_array_equal(imputed_outputs.sample_id, np.where(valid, ids[:, :steps], 0))
    np.testing.assert_allclose(imputed_state, states[np.arange(3), lengths - 1], atol=1e-5)


def test_scheduled_sampling_feeds_the_given_inputs_or_the_embedding_of_its_samples(rng):
    embeddings, given = rng.randn(VOCAB, 3).astype(np.float32), rng.randint(0, VOCAB, [3, STEPS])
    with graph_session() as sess:
        cell, layer = tfstate.LSTMCell(UNITS), tfstate.layers.Dense(VOCAB)
        initial = cell.zero_state(3, tf.float32)
        fed_inputs = tf.compat.v1.placeholder(tf.float32, [3, STEPS, 3])

        def decode(helper):
            return seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, helper, initial, output_layer=layer))[0]

        lengths = np.full([3], STEPS)
        teacher = decode(seq2seq.TrainingHelper(tf.nn.embedding_lookup(embeddings, given), lengths))
        never, always = (
            decode(
                seq2seq.ScheduledEmbeddingTrainingHelper(
                    tf.nn.embedding_lookup(embeddings, given), lengths, embeddings, probability, seed=5
                )
            )
            for probability in (0.0, 1.0)
        )
        replayed = decode(seq2seq.TrainingHelper(fed_inputs, lengths))
        randomize_variables(sess, scale=1.0)
        teacher, never, always = sess.run([teacher, never, always])
        fed = np.concatenate([given[:, :1], always.sample_id[:, :-1]], 1)
        replayed = sess.run(replayed, {fed_inputs: embeddings[fed]})
    np.testing.assert_allclose(never.rnn_output, teacher.rnn_output, atol=1e-6)
    assert np.all(never.sample_id == -1) and np.all((always.sample_id >= 0) & (always.sample_id < VOCAB))
    np.testing.assert_allclose(always.rnn_output, replayed.rnn_output, atol=1e-5)


BEAM_VOCAB, BEAM_STEPS, BEAM_WIDTH, END = 4, 3, 16, 3  # 16 beams keep every hypothesis of 3 steps over 4 tokens


def _attention_decoder_parts(memory, lengths, encoder_state, rows):
    mechanism = seq2seq.BahdanauAttention(5, memory, lengths)
    cell = seq2seq.AttentionWrapper(tfstate.LSTMCell(5), mechanism, attention_layer_size=5, alignment_history=True)
    return cell, cell.zero_state(rows, tf.float32).clone(cell_state=encoder_state), tfstate.layers.Dense(BEAM_VOCAB)


def _exhaustive_best(logits, alignments, length_penalty, coverage_penalty):
    """Every distinct hypothesis of BEAM_STEPS steps (ending at the first END), scored by TF 1.15's rules.

    `logits[k]` / `alignments[:, k]` are the teacher-forced logits / alignments of sequence k of
    itertools.product(range(BEAM_VOCAB), repeat=BEAM_STEPS). The score is log p / ((5 + n) / 6) ** length_penalty,
    where n counts END if it was chosen before the last step (not if chosen at it); hypotheses finished
    before the last step add coverage_penalty * sum(log(min(attention summed while running, 1))) (sum 0 -> 1).
    """
    log_probs, hypotheses = _log_softmax(logits), {}
    for k, sequence in enumerate(itertools.product(range(BEAM_VOCAB), repeat=BEAM_STEPS)):
        steps = sequence.index(END) + 1 if END in sequence else BEAM_STEPS
        log_p = sum(log_probs[k, t, sequence[t]] for t in range(steps))
        length = steps if steps < BEAM_STEPS else BEAM_STEPS - (sequence[-1] == END)
        score = log_p / ((5 + length) / 6) ** length_penalty
        if steps < BEAM_STEPS:
            attention = alignments[:steps, k].sum(0)
            score += coverage_penalty * np.log(np.minimum(np.where(attention == 0, 1, attention), 1)).sum()
        hypotheses[sequence[:steps] + (END,) * (BEAM_STEPS - steps)] = score
    ranked = sorted(hypotheses.items(), key=lambda item: -item[1])[:BEAM_WIDTH]
    return np.array([sequence for sequence, _ in ranked]), np.array([score for _, score in ranked])


@pytest.mark.parametrize("length_penalty, coverage_penalty", [(0.0, 0.0), (1.2, 0.4)])
def test_beam_search_finds_the_best_hypotheses_of_an_exhaustive_search(length_penalty, coverage_penalty, rng):
    batch, memory = 2, rng.randn(2, 4, 3).astype(np.float32)
    lengths, embeddings = np.array([4, 2]), rng.randn(BEAM_VOCAB, 3).astype(np.float32)
    state = [rng.randn(batch, 5).astype(np.float32) for _ in range(2)]
    with graph_session() as sess:
        with tf.compat.v1.variable_scope("model"):
            cell, initial, layer = _attention_decoder_parts(
                seq2seq.tile_batch(memory, BEAM_WIDTH),
                seq2seq.tile_batch(lengths, BEAM_WIDTH),
                seq2seq.tile_batch(tfstate.LSTMStateTuple(*state), BEAM_WIDTH),
                batch * BEAM_WIDTH,
            )
            decoder = seq2seq.BeamSearchDecoder(
                cell,
                embeddings,
                tf.fill([batch], 0),
                END,
                initial,
                BEAM_WIDTH,
                output_layer=layer,
                length_penalty_weight=length_penalty,
                coverage_penalty_weight=coverage_penalty,
            )
            outputs, _, _ = seq2seq.dynamic_decode(decoder, maximum_iterations=BEAM_STEPS)
        w = randomize_variables(sess, scale=1.5)
        ids, scores = sess.run([outputs.predicted_ids, outputs.beam_search_decoder_output.scores[:, -1]])
    every = np.array(list(itertools.product(range(BEAM_VOCAB), repeat=BEAM_STEPS)))
    rows = batch * len(every)
    with graph_session() as sess:  # the oracle's logits: every sequence teacher-forced through the same weights
        with tf.compat.v1.variable_scope("model"):
            cell, initial, layer = _attention_decoder_parts(
                np.repeat(memory, len(every), 0),
                np.repeat(lengths, len(every)),
                tfstate.LSTMStateTuple(*(np.repeat(s, len(every), 0) for s in state)),
                rows,
            )
            inputs = embeddings[np.concatenate([np.zeros([rows, 1], int), np.tile(every, [batch, 1])[:, :-1]], 1)]
            helper = seq2seq.TrainingHelper(inputs, np.full([rows], BEAM_STEPS))
            teacher, final, _ = seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, helper, initial, output_layer=layer))
        load_variables(sess, w)
        logits, alignments = sess.run([teacher.rnn_output, final.alignment_history.stack()])
    for b in range(batch):
        rows_b = slice(b * len(every), (b + 1) * len(every))
        best, best_scores = _exhaustive_best(logits[rows_b], alignments[:, rows_b], length_penalty, coverage_penalty)
        np.testing.assert_allclose(scores[b], best_scores, rtol=1e-4)
        np.testing.assert_array_equal(ids[b].T, best)


def _seq2seq_model(train, beam_width=3):
    """The TF1 way: embeddings, an encoder, attention training (if `train`), then greedy and beam decoding
    under `reuse=AUTO_REUSE`, so an inference-only graph makes the same variables. Returns the decoded ids."""
    embeddings = tf.compat.v1.get_variable("embeddings", [6, 3])
    source, source_lengths = tf.constant([[3, 4, 5, 3], [5, 4, 0, 0]]), tf.constant([4, 2])
    encoder_outputs, encoder_state = tfstate.dynamic_rnn(
        tfstate.LSTMCell(5),
        tf.nn.embedding_lookup(embeddings, source),
        source_lengths,
        dtype=tf.float32,
        scope="encoder",
    )
    cell = tfstate.MultiRNNCell([tfstate.LSTMCell(5), tfstate.LSTMCell(5)])
    output_layer = tfstate.layers.Dense(6)

    def decoder_cell(memory, lengths, state, rows):
        mechanism = seq2seq.BahdanauAttention(5, memory, lengths)
        wrapper = seq2seq.AttentionWrapper(cell, mechanism, attention_layer_size=5)
        return wrapper, wrapper.zero_state(rows, tf.float32).clone(cell_state=(state, state))

    if train:
        with tf.compat.v1.variable_scope("decode"):
            wrapper, initial = decoder_cell(encoder_outputs, source_lengths, encoder_state, 2)
            helper = seq2seq.TrainingHelper(tf.zeros([2, 3, 3]), [3, 2])
            seq2seq.dynamic_decode(seq2seq.BasicDecoder(wrapper, helper, initial, output_layer))
    with tf.compat.v1.variable_scope("decode", reuse=tf.compat.v1.AUTO_REUSE):
        wrapper, initial = decoder_cell(encoder_outputs, source_lengths, encoder_state, 2)
        greedy = seq2seq.GreedyEmbeddingHelper(embeddings, tf.fill([2], 1), 2)
        greedy, _, _ = seq2seq.dynamic_decode(
            seq2seq.BasicDecoder(wrapper, greedy, initial, output_layer), maximum_iterations=4
        )
    with tf.compat.v1.variable_scope("decode", reuse=tf.compat.v1.AUTO_REUSE):
        tiled = seq2seq.tile_batch((encoder_outputs, source_lengths, encoder_state), beam_width)
        wrapper, initial = decoder_cell(*tiled, 2 * beam_width)
        beam, _, _ = seq2seq.dynamic_decode(
            seq2seq.BeamSearchDecoder(wrapper, embeddings, tf.fill([2], 1), 2, initial, beam_width, output_layer),
            maximum_iterations=4,
        )
    return greedy.sample_id, beam.predicted_ids


TF1_NAMES = [
    "embeddings",
    "encoder/lstm_cell/kernel",
    "encoder/lstm_cell/bias",
    "decode/memory_layer/kernel",
    "decode/decoder/attention_wrapper/multi_rnn_cell/cell_0/lstm_cell/kernel",
    "decode/decoder/attention_wrapper/multi_rnn_cell/cell_0/lstm_cell/bias",
    "decode/decoder/attention_wrapper/multi_rnn_cell/cell_1/lstm_cell/kernel",
    "decode/decoder/attention_wrapper/multi_rnn_cell/cell_1/lstm_cell/bias",
    "decode/decoder/attention_wrapper/bahdanau_attention/query_layer/kernel",
    "decode/decoder/attention_wrapper/bahdanau_attention/attention_v",
    "decode/decoder/attention_wrapper/attention_layer/kernel",
    "decode/decoder/dense/kernel",
    "decode/decoder/dense/bias",
]


def test_a_tf1_attention_model_has_tf1s_variable_names_and_an_inference_graph_restores_its_checkpoint(tmp_path):
    with graph_session() as sess:
        decoded = _seq2seq_model(train=True)
        names = [v.op.name for v in tf.compat.v1.global_variables()]
        randomize_variables(sess, scale=1.0)
        decoded = sess.run(decoded)
        checkpoint = tf.compat.v1.train.Saver().save(sess, str(tmp_path / "model"))
    with graph_session() as sess:
        restored = _seq2seq_model(train=False)
        assert sorted(v.op.name for v in tf.compat.v1.global_variables()) == sorted(names)
        tf.compat.v1.train.Saver().restore(sess, checkpoint)
        restored = sess.run(restored)
    assert sorted(names) == sorted(TF1_NAMES)
    np.testing.assert_array_equal(restored[0], decoded[0])
    np.testing.assert_array_equal(restored[1], decoded[1])


def test_decoding_errors_name_what_was_expected_and_what_was_given(rng):
    with pytest.raises(RuntimeError, match=r"dynamic_decode builds a TF1 .*disable_eager_execution"):
        seq2seq.dynamic_decode(None)
    with graph_session():
        cell, embeddings = tfstate.LSTMCell(4), rng.randn(5, 3).astype(np.float32)
        untiled = cell.zero_state(2, tf.float32)
        with pytest.raises(
            ValueError,
            match=r"batch \* beam_width = 2 \* 3 = 6 rows, but a state or output has 2 "
            r"\(shape \(2, 4\)\).*tile_batch",
        ):
            seq2seq.BeamSearchDecoder(cell, embeddings, tf.fill([2], 0), 1, untiled, beam_width=3)
        with pytest.raises(TypeError, match=r"needs a tfstate.seq2seq Helper .* got LSTMStateTuple"):
            seq2seq.BasicDecoder(cell, untiled, untiled)
        with pytest.raises(TypeError, match=r"needs a layer such as tfstate.layers.Dense.* got int"):
            seq2seq.BasicDecoder(cell, seq2seq.GreedyEmbeddingHelper(embeddings, [0, 0], 1), untiled, output_layer=5)
        with pytest.raises(TypeError, match=r"needs a tfstate.seq2seq.Decoder .* got LSTMCell"):
            seq2seq.dynamic_decode(cell)
        with pytest.raises(ValueError, match=r"scalar maximum_iterations; got shape \(2,\)"):
            helper = seq2seq.GreedyEmbeddingHelper(embeddings, [0, 0], 1)
            seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, helper, untiled), maximum_iterations=[2, 3])
        with pytest.raises(ValueError, match=r"start_tokens of shape \[batch\]; got shape \(\)"):
            seq2seq.GreedyEmbeddingHelper(embeddings, 0, 1)


def test_finalize_reorders_a_tensor_array_in_the_cell_state_by_tf1s_beam_rule():
    with graph_session() as sess:
        cell = tfstate.GRUCell(1)
        decoder = seq2seq.BeamSearchDecoder(
            cell, np.eye(3, dtype=np.float32), [0], 2, cell.zero_state(2, tf.float32), beam_width=2
        )
        parent_ids = tf.constant([[[0, 0]], [[1, 0]], [[1, 0]]])  # [time, batch, beam]
        history = tf.TensorArray(tf.float32, size=3, element_shape=[2, 1]).unstack(
            [[[10.0 * t + row] for row in range(2)] for t in range(3)]
        )  # step t, row r holds 10 t + r
        outputs = seq2seq.BeamSearchDecoderOutput(tf.zeros([3, 1, 2]), tf.zeros([3, 1, 2], tf.int32), parent_ids)
        state = seq2seq.BeamSearchDecoderState(
            (history, tf.zeros([1, 2, 1])),
            tf.zeros([1, 2]),
            tf.zeros([1, 2], bool),
            tf.constant([[3, 1]], tf.int64),
            (),
        )
        _, final_state = decoder.finalize(outputs, state, None)
        reordered = sess.run(final_state.cell_state[0])
    # beam 0's ancestors occupy rows 0, 1, 0 after steps 2, 1, 0; beam 1 (length 1) has row 1 at step 0, then its own
    np.testing.assert_array_equal(reordered[:, :, 0], [[0, 1], [11, 11], [20, 21]])


def test_scheduled_output_sampling_feeds_outputs_back_with_the_auxiliary_inputs(rng):
    inputs, auxiliary = rng.randn(3, STEPS, UNITS).astype(np.float32), rng.randn(3, STEPS, 2).astype(np.float32)
    lengths = np.full([3], STEPS)
    with graph_session() as sess:
        cell = tfstate.GRUCell(UNITS)
        initial = tf.constant(rng.randn(3, UNITS), tf.float32)

        def decode(helper):
            return seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, helper, initial))[0]

        teacher = decode(seq2seq.TrainingHelper(np.concatenate([inputs, auxiliary], -1), lengths))
        never = decode(seq2seq.ScheduledOutputTrainingHelper(inputs, lengths, 0.0, auxiliary_inputs=auxiliary))
        as_is = decode(seq2seq.ScheduledOutputTrainingHelper(inputs, lengths, 1.0, auxiliary_inputs=auxiliary))
        doubled = decode(
            seq2seq.ScheduledOutputTrainingHelper(
                inputs, lengths, 1.0, auxiliary_inputs=auxiliary, next_inputs_fn=lambda outputs: 2 * outputs
            )
        )

        def feed_back(factor):  # the oracle: the (scaled) output and the next auxiliary input, fed back by hand
            x, state, outputs = np.concatenate([inputs[:, 0], auxiliary[:, 0]], -1), initial, []
            for t in range(STEPS):
                output, state = cell(x, state)
                outputs.append(output)
                if t + 1 < STEPS:
                    x = tf.concat([factor * output, auxiliary[:, t + 1]], -1)
            return tf.stack(outputs, 1)

        randomize_variables(sess)
        r = sess.run(
            dict(
                teacher=teacher,
                never=never,
                as_is=as_is,
                doubled=doubled,
                loop_as_is=feed_back(1),
                loop_doubled=feed_back(2),
            )
        )
    np.testing.assert_allclose(r["never"].rnn_output, r["teacher"].rnn_output, atol=1e-6)
    assert np.all(r["never"].sample_id == 0) and np.all(r["doubled"].sample_id == 1)
    np.testing.assert_allclose(r["as_is"].rnn_output, r["loop_as_is"], atol=1e-5)
    np.testing.assert_allclose(r["doubled"].rnn_output, r["loop_doubled"], atol=1e-5)
