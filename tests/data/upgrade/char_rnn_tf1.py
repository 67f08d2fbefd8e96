"""A TF1 char-RNN / poem generator, written as the char-rnn tutorials wrote it (TensorFlow 1.x, tf.contrib).

A stacked BasicLSTMCell model over embedded characters, unrolled with legacy_seq2seq.rnn_decoder over
tf.split inputs, trained with sequence_loss_by_example, clipped gradients and Adam. The final state of each
batch is fetched and fed back as the next batch's initial state, and sampling runs one character at a time
with the state fed back through feed_dict. The script checks its own claims: the softmax of a one-character
sampling loop fed its own state equals the softmax of the whole sequence run at once, and a model saved
with tf.train.Saver and restored into a fresh session gives the same loss.
"""
import os
import tempfile

import numpy as np
import tensorflow as tf
from tensorflow.contrib import legacy_seq2seq
from tensorflow.contrib import rnn

TEXT = "the quick brown fox jumps over the lazy dog. " * 4
CHARS = sorted(set(TEXT))
VOCAB, BATCH, SEQ, UNITS, LAYERS = len(CHARS), 2, 6, 8, 2


class Model(object):
    def __init__(self, batch_size, seq_length, infer=False):
        cells = [rnn.BasicLSTMCell(UNITS) for _ in range(LAYERS)]
        self.cell = cell = rnn.MultiRNNCell(cells, state_is_tuple=True)
        self.input_data = tf.placeholder(tf.int32, [batch_size, seq_length])
        self.targets = tf.placeholder(tf.int32, [batch_size, seq_length])
        self.initial_state = cell.zero_state(batch_size, tf.float32)
        with tf.variable_scope("rnnlm", reuse=infer):
            softmax_w = tf.get_variable("softmax_w", [UNITS, VOCAB])
            softmax_b = tf.get_variable("softmax_b", [VOCAB])
            embedding = tf.get_variable("embedding", [VOCAB, UNITS])
            inputs = tf.split(tf.nn.embedding_lookup(embedding, self.input_data), seq_length, 1)
            inputs = [tf.squeeze(input_, [1]) for input_ in inputs]
            outputs, last_state = legacy_seq2seq.rnn_decoder(inputs, self.initial_state, cell, scope="rnnlm")
        output = tf.reshape(tf.concat(outputs, 1), [-1, UNITS])
        self.logits = tf.matmul(output, softmax_w) + softmax_b
        self.probs = tf.nn.softmax(self.logits)
        loss = legacy_seq2seq.sequence_loss_by_example(
            [self.logits], [tf.reshape(self.targets, [-1])], [tf.ones([batch_size * seq_length])])
        self.cost = tf.reduce_sum(loss) / batch_size / seq_length
        self.final_state = last_state
        if infer:
            return
        self.lr = tf.Variable(0.01, trainable=False)
        tvars = tf.trainable_variables()
        grads, _ = tf.clip_by_global_norm(tf.gradients(self.cost, tvars), 5.0)
        optimizer = tf.train.AdamOptimizer(self.lr)
        self.train_op = optimizer.apply_gradients(zip(grads, tvars))


def batches(ids):
    n = len(ids) // (BATCH * SEQ) * BATCH * SEQ
    x = np.array(ids[:n]).reshape(BATCH, -1)
    y = np.array(ids[1:n] + ids[:1]).reshape(BATCH, -1)
    return [(x[:, i:i + SEQ], y[:, i:i + SEQ]) for i in range(0, x.shape[1], SEQ)]


ids = [CHARS.index(c) for c in TEXT]
tf.set_random_seed(0)
model = Model(BATCH, SEQ)
sampler = Model(1, 1, infer=True)
whole = Model(1, SEQ, infer=True)
saver = tf.train.Saver(tf.global_variables())
checkpoint = os.path.join(tempfile.mkdtemp(), "model.ckpt")

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for epoch in range(3):
        state = sess.run(model.initial_state)
        for x, y in batches(ids):
            feed = {model.input_data: x, model.targets: y, model.initial_state: state}
            train_loss, state, _ = sess.run([model.cost, model.final_state, model.train_op], feed)
    x, y = batches(ids)[0]
    feed = {model.input_data: x, model.targets: y}
    saved_loss = sess.run(model.cost, feed)
    saver.save(sess, checkpoint)

    # One character at a time, the state fed back, against the whole prime run at once.
    prime = ids[:SEQ]
    state = sess.run(sampler.cell.zero_state(1, tf.float32))
    stepped = []
    for char in prime:
        feed = {sampler.input_data: [[char]], sampler.initial_state: state}
        probs, state = sess.run([sampler.probs, sampler.final_state], feed)
        stepped.append(probs[0])
    at_once = sess.run(whole.probs, {whole.input_data: [prime]})
    np.testing.assert_allclose(np.array(stepped), at_once, rtol=1e-5, atol=1e-6)

    rng = np.random.RandomState(0)
    char, generated = prime[-1], []
    for _ in range(20):
        feed = {sampler.input_data: [[char]], sampler.initial_state: state}
        probs, state = sess.run([sampler.probs, sampler.final_state], feed)
        char = rng.choice(VOCAB, p=probs[0] / probs[0].sum())
        generated.append(CHARS[char])

with tf.Session() as sess:
    ckpt = tf.train.get_checkpoint_state(os.path.dirname(checkpoint))
    saver.restore(sess, ckpt.model_checkpoint_path)
    restored_loss = sess.run(model.cost, feed_dict={model.input_data: x, model.targets: y})
np.testing.assert_allclose(restored_loss, saved_loss, rtol=1e-6)
print("char_rnn: a sampling loop fed its own state equals one run over the prime; %d chars sampled; "
      "the restored model gives the saved loss" % len(generated))
