"""A TF1 CTC speech-style model, written as the TF1 CTC examples wrote it (TensorFlow 1.x, tf.contrib).

Random "feature frames" carry a label sequence; a bidirectional LSTM (tf.nn.bidirectional_dynamic_rnn over
tf.contrib.rnn.LSTMCell, with sequence_length) feeds a tf.contrib.layers.fully_connected projection to
num_classes (the last one CTC's blank), trained with tf.nn.ctc_loss on time-major logits and labels fed
through a tf.sparse_placeholder as a (indices, values, shape) tuple, decoded with ctc_greedy_decoder and
ctc_beam_search_decoder and scored with tf.edit_distance. The script checks its own claims: the label error
rate tf.edit_distance reports equals a NumPy Levenshtein distance over the decoded sequences, greedy
decoding equals collapsing the per-frame argmax (repeats merged, blanks dropped) in NumPy, and beam search
over frames spelling 3, blank, 3 gives [3] by default and [3, 3] with merge_repeated=False, as in TF1.
"""
from __future__ import print_function

import numpy as np
import tensorflow as tf

NUM_FEATURES, NUM_HIDDEN, NUM_CLASSES, BATCH, MAX_FRAMES = 4, 6, 5, 3, 12


def sparse_tuple_from(sequences, dtype=np.int32):
    indices, values = [], []
    for n, seq in enumerate(sequences):
        indices.extend(zip([n] * len(seq), range(len(seq))))
        values.extend(seq)
    indices = np.asarray(indices, dtype=np.int64)
    values = np.asarray(values, dtype=dtype)
    shape = np.asarray([len(sequences), np.asarray(indices).max(0)[1] + 1], dtype=np.int64)
    return indices, values, shape


def levenshtein(a, b):
    d = np.arange(len(b) + 1)
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[len(b)]


def greedy_collapse(frames, length):
    best = frames[:length].argmax(-1)
    out = [k for i, k in enumerate(best) if (i == 0 or k != best[i - 1]) and k != NUM_CLASSES - 1]
    return out


rng = np.random.RandomState(0)
seq_len = np.array([12, 9, 10], dtype=np.int32)
labels = [[0, 1, 2], [3, 3], [1, 0, 3, 2]]
features = rng.randn(BATCH, MAX_FRAMES, NUM_FEATURES).astype(np.float32)
for b, label in enumerate(labels):
    for t, k in enumerate(label):
        features[b, 2 * t + 1, k] += 3.0

graph = tf.Graph()
with graph.as_default():
    tf.set_random_seed(0)
    inputs = tf.placeholder(tf.float32, [None, None, NUM_FEATURES])
    targets = tf.sparse_placeholder(tf.int32)
    seq_length = tf.placeholder(tf.int32, [None])

    cell_fw = tf.contrib.rnn.LSTMCell(NUM_HIDDEN, state_is_tuple=True)
    cell_bw = tf.contrib.rnn.LSTMCell(NUM_HIDDEN, state_is_tuple=True)
    (out_fw, out_bw), _ = tf.nn.bidirectional_dynamic_rnn(
        cell_fw, cell_bw, inputs, seq_length, dtype=tf.float32)
    outputs = tf.concat([out_fw, out_bw], 2)
    shape = tf.shape(inputs)
    batch_s, max_timesteps = shape[0], shape[1]
    outputs = tf.reshape(outputs, [-1, 2 * NUM_HIDDEN])
    logits = tf.contrib.layers.fully_connected(outputs, NUM_CLASSES, activation_fn=None)
    logits = tf.reshape(logits, [batch_s, -1, NUM_CLASSES])
    logits = tf.transpose(logits, (1, 0, 2))

    loss = tf.nn.ctc_loss(targets, logits, seq_length)
    cost = tf.reduce_mean(loss)
    optimizer = tf.train.MomentumOptimizer(0.05, 0.9).minimize(cost)

    decoded, log_prob = tf.nn.ctc_greedy_decoder(logits, seq_length)
    beam_decoded, beam_log_prob = tf.nn.ctc_beam_search_decoder(logits, seq_length, beam_width=4, top_paths=1)
    ler = tf.reduce_mean(tf.edit_distance(tf.cast(decoded[0], tf.int32), targets))
    dense = tf.sparse_tensor_to_dense(decoded[0], default_value=-1)
    beam_dense = tf.sparse_to_dense(beam_decoded[0].indices, beam_decoded[0].dense_shape, beam_decoded[0].values,
                                    default_value=-1)
    # Frames that spell 3, blank, 3: the best path is [3, 3], which TF1's beam search (merge_repeated=True by
    # default) emits as [3].
    spelled = np.full([3, 1, NUM_CLASSES], 0.01, dtype=np.float32)
    spelled[0, 0, 3] = spelled[1, 0, NUM_CLASSES - 1] = spelled[2, 0, 3] = 1.0
    spelled = tf.log(tf.constant(spelled))
    merged, _ = tf.nn.ctc_beam_search_decoder(spelled, [3], beam_width=4)
    unmerged, _ = tf.nn.ctc_beam_search_decoder(spelled, [3], beam_width=4, merge_repeated=False)
    init = tf.global_variables_initializer()

with tf.Session(graph=graph) as session:
    session.run(init)
    feed = {inputs: features, targets: sparse_tuple_from(labels), seq_length: seq_len}
    first = session.run(cost, feed)
    for epoch in range(30):
        train_cost, _ = session.run([cost, optimizer], feed)
    label_error, greedy, beam, frames = session.run([ler, dense, beam_dense, tf.nn.softmax(logits)], feed)
    merged, unmerged = session.run([merged[0].values, unmerged[0].values])
assert train_cost < first, (first, train_cost)

decoded_lists = [[int(k) for k in row if k >= 0] for row in greedy]
frames = frames.transpose(1, 0, 2)
assert decoded_lists == [greedy_collapse(frames[b], seq_len[b]) for b in range(BATCH)], decoded_lists
expected = np.mean([levenshtein(d, t) / float(len(t)) for d, t in zip(decoded_lists, labels)])
np.testing.assert_allclose(label_error, expected, rtol=1e-6)
assert beam.shape[0] == BATCH
assert list(merged) == [3] and list(unmerged) == [3, 3], (merged, unmerged)
print("ctc_speech: cost %.2f -> %.2f; greedy decoding is the collapsed argmax; label error rate %.3f equals "
      "the NumPy edit distance; beam search merges repeats by default" % (first, train_cost, label_error))
