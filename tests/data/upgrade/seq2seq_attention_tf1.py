"""A TF1 sequence-to-sequence model with attention, written as TF 1.x tutorials wrote one (tf.contrib.seq2seq).

It learns to reverse short strings of digits: an LSTM encoder, a Luong-attention LSTM decoder trained
with a TrainingHelper, then greedy decoding and a beam search over the tiled encoder outputs, both
reusing the trained weights. It checks its own claims: the loss falls, and the trained model
reverses most unseen strings greedily and with the beam search.
"""
import numpy as np
import tensorflow as tf

GO, EOS, FIRST_DIGIT, VOCAB = 1, 2, 3, 9
EMBEDDING, UNITS, BATCH, BEAM, STEPS = 8, 32, 32, 3, 200
MIN_LENGTH, MAX_LENGTH = 2, 5


def make_batch(rng, size):
    lengths = rng.randint(MIN_LENGTH, MAX_LENGTH + 1, size)
    source = np.zeros([size, MAX_LENGTH], np.int32)
    decoder_in = np.zeros([size, MAX_LENGTH + 1], np.int32)
    decoder_out = np.zeros([size, MAX_LENGTH + 1], np.int32)
    for row, length in enumerate(lengths):
        digits = rng.randint(FIRST_DIGIT, VOCAB, length)
        source[row, :length] = digits
        decoder_in[row, :length + 1] = np.concatenate([[GO], digits[::-1]])
        decoder_out[row, :length + 1] = np.concatenate([digits[::-1], [EOS]])
    return source, lengths, decoder_in, decoder_out, lengths + 1


tf.set_random_seed(1)
source = tf.placeholder(tf.int32, [None, MAX_LENGTH], name="source")
source_length = tf.placeholder(tf.int32, [None], name="source_length")
decoder_inputs = tf.placeholder(tf.int32, [None, MAX_LENGTH + 1], name="decoder_inputs")
decoder_targets = tf.placeholder(tf.int32, [None, MAX_LENGTH + 1], name="decoder_targets")
target_length = tf.placeholder(tf.int32, [None], name="target_length")
batch_size = tf.shape(source)[0]

embeddings = tf.get_variable("embeddings", [VOCAB, EMBEDDING])
encoder_cell = tf.contrib.rnn.LSTMCell(UNITS)
encoder_outputs, encoder_state = tf.nn.dynamic_rnn(
    encoder_cell, tf.nn.embedding_lookup(embeddings, source), sequence_length=source_length,
    dtype=tf.float32, scope="encoder")

decoder_cell = tf.nn.rnn_cell.LSTMCell(UNITS)
projection = tf.layers.Dense(VOCAB, name="output_projection")


def attention_cell(memory, memory_length, initial_state, rows):
    mechanism = tf.contrib.seq2seq.LuongAttention(UNITS, memory, memory_sequence_length=memory_length, scale=True)
    cell = tf.contrib.seq2seq.AttentionWrapper(decoder_cell, mechanism, attention_layer_size=UNITS,
                                               name="attention")
    return cell, cell.zero_state(rows, tf.float32).clone(cell_state=initial_state)


with tf.variable_scope("decoder"):
    cell, initial_state = attention_cell(encoder_outputs, source_length, encoder_state, batch_size)
    helper = tf.contrib.seq2seq.TrainingHelper(tf.nn.embedding_lookup(embeddings, decoder_inputs), target_length)
    decoder = tf.contrib.seq2seq.BasicDecoder(cell, helper, initial_state, output_layer=projection)
    outputs, _, _ = tf.contrib.seq2seq.dynamic_decode(decoder)
    logits = outputs.rnn_output
    decoded_steps = tf.shape(logits)[1]
    weights = tf.sequence_mask(target_length, decoded_steps, dtype=tf.float32)
    loss = tf.contrib.seq2seq.sequence_loss(logits, decoder_targets[:, :decoded_steps], weights)
    train_op = tf.train.AdamOptimizer(0.01).minimize(loss)

with tf.variable_scope("decoder", reuse=True):
    greedy_helper = tf.contrib.seq2seq.GreedyEmbeddingHelper(embeddings, tf.fill([batch_size], GO), EOS)
    greedy_decoder = tf.contrib.seq2seq.BasicDecoder(cell, greedy_helper, initial_state, output_layer=projection)
    greedy_outputs, _, _ = tf.contrib.seq2seq.dynamic_decode(greedy_decoder, maximum_iterations=MAX_LENGTH + 1)
    greedy_ids = greedy_outputs.sample_id

with tf.variable_scope("decoder", reuse=True):
    tiled_outputs = tf.contrib.seq2seq.tile_batch(encoder_outputs, multiplier=BEAM)
    tiled_length = tf.contrib.seq2seq.tile_batch(source_length, multiplier=BEAM)
    tiled_state = tf.contrib.seq2seq.tile_batch(encoder_state, multiplier=BEAM)
    beam_cell, beam_initial_state = attention_cell(tiled_outputs, tiled_length, tiled_state, batch_size * BEAM)
    beam_decoder = tf.contrib.seq2seq.BeamSearchDecoder(
        beam_cell, embeddings, tf.fill([batch_size], GO), EOS, beam_initial_state, BEAM,
        output_layer=projection, length_penalty_weight=0.6)
    beam_outputs, _, _ = tf.contrib.seq2seq.dynamic_decode(beam_decoder, maximum_iterations=MAX_LENGTH + 1)
    best_beam = beam_outputs.predicted_ids[:, :, 0]


def exact_matches(predicted, decoder_out):
    width = min(predicted.shape[1], decoder_out.shape[1])
    padded = np.full(decoder_out.shape, EOS)
    padded[:, :width] = predicted[:, :width]
    mask = np.arange(decoder_out.shape[1])[None, :] < (decoder_out != 0).sum(1)[:, None]
    return np.mean(np.all((padded == decoder_out) | ~mask, axis=1))


rng = np.random.RandomState(0)
with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    losses = []
    for step in range(STEPS):
        src, src_len, dec_in, dec_out, tgt_len = make_batch(rng, BATCH)
        feed = {source: src, source_length: src_len, decoder_inputs: dec_in, decoder_targets: dec_out,
                target_length: tgt_len}
        _, step_loss = sess.run([train_op, loss], feed)
        losses.append(step_loss)
        if step % 100 == 0:
            print("step %d loss %.3f" % (step, step_loss))
    src, src_len, _, dec_out, _ = make_batch(np.random.RandomState(1), 64)
    greedy, beam = sess.run([greedy_ids, best_beam], {source: src, source_length: src_len})
    greedy_accuracy, beam_accuracy = exact_matches(greedy, dec_out), exact_matches(beam, dec_out)
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert last < 0.3 * first, "the loss did not fall"
    assert greedy_accuracy > 0.5 and beam_accuracy > 0.5, "the model did not learn to reverse"
    print("seq2seq_attention: loss %.3f -> %.3f, reversed exactly: greedy %.2f, beam %.2f"
          % (first, last, greedy_accuracy, beam_accuracy))
