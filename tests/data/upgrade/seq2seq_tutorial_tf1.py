"""TF1 seq2seq tutorials' two styles on a toy reversal task (TensorFlow 1.x, tf.contrib).

The legacy style: tf.contrib.legacy_seq2seq.embedding_rnn_seq2seq over lists of placeholders, built twice
in one variable scope (feed_previous=False to train, feed_previous=True reusing the weights to decode), with
sequence_loss over target weights. The dynamic style: a BahdanauAttention'd GRUCell decoder with a
ScheduledEmbeddingTrainingHelper and a SampleEmbeddingHelper, and a tf.layers.Dense output layer. The script
checks its own claims: decoding with feed_previous=True equals teacher forcing fed the decoder's own argmax
predictions; a scheduled helper with sampling probability 0 equals the TrainingHelper; and the sampling
helper's ids are drawn from the logits it returns (each sampled id has nonzero probability).
"""
import numpy as np
import tensorflow as tf
from tensorflow.contrib import seq2seq
from tensorflow.contrib.rnn import GRUCell

VOCAB, EMBED, UNITS, LENGTH, BATCH, GO = 6, 5, 8, 4, 3, 0

rng = np.random.RandomState(0)
sources = rng.randint(1, VOCAB, size=(BATCH, LENGTH)).astype(np.int32)
targets = sources[:, ::-1]

# Legacy: lists of per-step placeholders.
encoder_inputs = [tf.placeholder(tf.int32, [None], name="encoder%d" % i) for i in range(LENGTH)]
decoder_inputs = [tf.placeholder(tf.int32, [None], name="decoder%d" % i) for i in range(LENGTH)]
target_weights = [tf.ones([BATCH]) for _ in range(LENGTH)]
with tf.variable_scope("legacy") as scope:
    cell = tf.contrib.rnn.BasicLSTMCell(UNITS)
    train_outputs, _ = tf.contrib.legacy_seq2seq.embedding_rnn_seq2seq(
        encoder_inputs, decoder_inputs, cell, VOCAB, VOCAB, EMBED, feed_previous=False)
    scope.reuse_variables()
    decode_outputs, _ = tf.contrib.legacy_seq2seq.embedding_rnn_seq2seq(
        encoder_inputs, decoder_inputs, cell, VOCAB, VOCAB, EMBED, feed_previous=True)
legacy_loss = tf.contrib.legacy_seq2seq.sequence_loss(
    train_outputs, [tf.constant(t) for t in targets.T], target_weights)

# Dynamic: attention over the encoder outputs, decoded with helpers.
source = tf.placeholder(tf.int32, [None, LENGTH])
decoder_in = tf.placeholder(tf.int32, [None, LENGTH])
lengths = tf.fill([tf.shape(source)[0]], LENGTH)
with tf.variable_scope("dynamic"):
    embedding = tf.get_variable("embedding", [VOCAB, EMBED])
    memory, encoder_state = tf.nn.dynamic_rnn(GRUCell(UNITS), tf.nn.embedding_lookup(embedding, source),
                                              sequence_length=lengths, dtype=tf.float32, scope="encoder")
    attention = seq2seq.BahdanauAttention(UNITS, memory, memory_sequence_length=lengths)
    decoder_cell = seq2seq.AttentionWrapper(GRUCell(UNITS), attention, attention_layer_size=UNITS)
    projection = tf.layers.Dense(VOCAB, use_bias=False, name="projection")
    initial = decoder_cell.zero_state(BATCH, tf.float32).clone(cell_state=encoder_state)

    def decode(helper):
        decoder = seq2seq.BasicDecoder(decoder_cell, helper, initial, output_layer=projection)
        outputs, _, _ = seq2seq.dynamic_decode(decoder, maximum_iterations=LENGTH, scope="decoder")
        return outputs

    embedded = tf.nn.embedding_lookup(embedding, decoder_in)
    teacher = decode(seq2seq.TrainingHelper(embedded, lengths))
    scheduled = decode(seq2seq.ScheduledEmbeddingTrainingHelper(embedded, lengths, embedding, 0.0, seed=1))
    sampled = decode(seq2seq.SampleEmbeddingHelper(embedding, tf.fill([BATCH], GO), -1, seed=1))
mask = tf.sequence_mask(lengths, LENGTH, dtype=tf.float32)
dynamic_loss = seq2seq.sequence_loss(teacher.rnn_output, tf.constant(targets), mask)
total_loss = legacy_loss + dynamic_loss
train_op = tf.train.AdamOptimizer(0.05).minimize(total_loss)

go_targets = np.concatenate([np.full([BATCH, 1], GO), targets[:, :-1]], axis=1).astype(np.int32)
with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    feed = {p: v for p, v in zip(encoder_inputs, sources.T)}
    feed.update({p: v for p, v in zip(decoder_inputs, go_targets.T)})
    feed.update({source: sources, decoder_in: go_targets})
    losses = [sess.run([total_loss, train_op], feed)[0] for _ in range(15)]
    decoded = sess.run(decode_outputs, feed)
    # Teacher forcing fed the decoder's own argmax predictions gives what feed_previous=True decoded.
    own = [np.full([BATCH], GO)] + [step.argmax(-1) for step in decoded[:-1]]
    feed.update({p: v.astype(np.int32) for p, v in zip(decoder_inputs, own)})
    forced = sess.run(train_outputs, feed)
    by_teacher, by_schedule, draws = sess.run([teacher.rnn_output, scheduled.rnn_output, sampled], feed)

np.testing.assert_allclose(np.array(forced), np.array(decoded), rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(by_schedule, by_teacher, rtol=1e-6)
probs = np.exp(draws.rnn_output - draws.rnn_output.max(-1, keepdims=True))
assert np.all(np.take_along_axis(probs, draws.sample_id[..., None], -1) > 0)
assert losses[-1] < losses[0], losses
print("seq2seq_tutorial: feed_previous decoding equals forcing its own argmax; a schedule of 0 is the training "
      "helper; loss %.2f -> %.2f" % (losses[0], losses[-1]))
