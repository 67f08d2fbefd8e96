"""A TF1 RNN text classifier, written as the TF1 text-classification tutorials wrote it (TensorFlow 1.x).

Word ids of padded sentences go through tf.contrib.layers.embed_sequence and a tf.contrib.rnn.GRUCell run by
tf.nn.dynamic_rnn with sequence_length; the final state feeds tf.layers.dense logits, trained with the mean
sparse softmax cross entropy and scored with tf.metrics.accuracy (local variables) over a streamed
evaluation, with summaries written by tf.summary.FileWriter. The script checks its own claims: the GRU's
final state equals its output at each sentence's last real word (sequence_length honoured), the streamed
tf.metrics.accuracy equals the NumPy accuracy of the fetched predictions, and the event file holds the
losses the session returned.
"""
import tempfile

import numpy as np
import tensorflow as tf
from tensorflow.contrib import layers

VOCAB, EMBED, UNITS, CLASSES, MAX_LEN, BATCH = 12, 4, 6, 2, 7, 8

rng = np.random.RandomState(0)
lengths = rng.randint(2, MAX_LEN + 1, size=4 * BATCH).astype(np.int32)
words = rng.randint(1, VOCAB, size=(4 * BATCH, MAX_LEN)).astype(np.int32)
words[np.arange(MAX_LEN)[None, :] >= lengths[:, None]] = 0
classes = (words[:, 0] % 2).astype(np.int64)  # the first word decides the class

tf.set_random_seed(1)
x = tf.placeholder(tf.int32, [None, MAX_LEN], name="words")
length = tf.placeholder(tf.int32, [None], name="length")
y = tf.placeholder(tf.int64, [None], name="label")
embedded = layers.embed_sequence(x, vocab_size=VOCAB, embed_dim=EMBED, scope="words")
cell = tf.contrib.rnn.GRUCell(UNITS)
outputs, state = tf.nn.dynamic_rnn(cell, embedded, sequence_length=length, dtype=tf.float32)
logits = tf.layers.dense(state, CLASSES, name="logits")
loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
predictions = tf.argmax(logits, 1)
accuracy, update_accuracy = tf.metrics.accuracy(labels=y, predictions=predictions)
train_op = tf.train.AdamOptimizer(0.05).minimize(loss)
tf.summary.scalar("loss", loss)
merged = tf.summary.merge_all()

logdir = tempfile.mkdtemp()
losses = []
with tf.Session() as sess:
    writer = tf.summary.FileWriter(logdir, sess.graph)
    sess.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
    for step in range(20):
        batch = slice((step % 4) * BATCH, (step % 4 + 1) * BATCH)
        summary, batch_loss, _ = sess.run([merged, loss, train_op],
                                          {x: words[batch], length: lengths[batch], y: classes[batch]})
        writer.add_summary(summary, step)
        losses.append(batch_loss)
    writer.close()
    fetched = []
    for start in range(0, len(words), BATCH):
        feed = {x: words[start:start + BATCH], length: lengths[start:start + BATCH], y: classes[start:start + BATCH]}
        batch_predictions, _ = sess.run([predictions, update_accuracy], feed)
        fetched.append(batch_predictions)
    streamed = sess.run(accuracy)
    all_outputs, final = sess.run([outputs, state], {x: words, length: lengths})

np.testing.assert_allclose(final, all_outputs[np.arange(len(words)), lengths - 1], rtol=1e-6)
assert np.all(all_outputs[np.arange(MAX_LEN)[None, :] >= lengths[:, None]] == 0)
np.testing.assert_allclose(streamed, np.mean(np.concatenate(fetched) == classes), rtol=1e-6)
logged = [value.simple_value for path in tf.gfile.Glob(logdir + "/events.*")
          for event in tf.train.summary_iterator(path) for value in event.summary.value if value.tag == "loss"]
np.testing.assert_allclose(logged, losses, rtol=1e-6)
print("text_classifier: the final state is the output at each last word; streamed accuracy %.3f equals NumPy's; "
      "%d losses logged" % (streamed, len(logged)))
