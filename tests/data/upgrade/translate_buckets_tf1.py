"""A small translation model written as TensorFlow 1.x's translate tutorial wrote them (tf.contrib.legacy_seq2seq).

The task is synthetic: the "translation" of a sentence is its words in reverse order, each word
shifted by one. Sentences go to buckets by length; one embedding_attention_seq2seq model per bucket
(model_with_buckets) shares one set of weights; a sampled softmax trains it with plain SGD, a Saver
writes a checkpoint, and a second, decoding model (feed_previous=True) restores it and translates
greedily. The script checks its own claims and prints "translate_buckets: ok".
"""
import os
import random
import tempfile

import numpy as np
import tensorflow as tf

PAD_ID, GO_ID, EOS_ID = 0, 1, 2
VOCAB_SIZE = 12
BUCKETS = [(3, 5), (5, 7)]
SIZE, NUM_LAYERS, BATCH_SIZE, NUM_SAMPLES = 16, 2, 16, 6


def translate(words):
    return [VOCAB_SIZE - 1 if w == VOCAB_SIZE - 1 else w + 1 for w in reversed(words)]


def make_data(count):
    data = [[] for _ in BUCKETS]
    for _ in range(count):
        source = [random.randint(3, VOCAB_SIZE - 1) for _ in range(random.randint(1, BUCKETS[-1][0]))]
        target = translate(source) + [EOS_ID]
        for bucket_id, (source_size, target_size) in enumerate(BUCKETS):
            if len(source) <= source_size and len(target) < target_size:
                data[bucket_id].append((source, target))
                break
    return data


class Seq2SeqModel(object):

    def __init__(self, buckets, size, num_layers, batch_size, learning_rate, num_samples, forward_only=False):
        self.buckets = buckets
        self.batch_size = batch_size
        self.global_step = tf.Variable(0, trainable=False)

        w_t = tf.get_variable("proj_w", [VOCAB_SIZE, size])
        w = tf.transpose(w_t)
        b = tf.get_variable("proj_b", [VOCAB_SIZE])
        output_projection = (w, b)

        def sampled_loss(labels, logits):
            labels = tf.reshape(labels, [-1, 1])
            return tf.nn.sampled_softmax_loss(weights=w_t, biases=b, labels=labels, inputs=logits,
                                              num_sampled=num_samples, num_classes=VOCAB_SIZE)

        def single_cell():
            return tf.contrib.rnn.GRUCell(size)
        cell = tf.contrib.rnn.MultiRNNCell([single_cell() for _ in range(num_layers)])

        def seq2seq_f(encoder_inputs, decoder_inputs, do_decode):
            return tf.contrib.legacy_seq2seq.embedding_attention_seq2seq(
                encoder_inputs, decoder_inputs, cell,
                num_encoder_symbols=VOCAB_SIZE, num_decoder_symbols=VOCAB_SIZE, embedding_size=size,
                output_projection=output_projection, feed_previous=do_decode)

        self.encoder_inputs = [tf.placeholder(tf.int32, shape=[None], name="encoder{0}".format(i))
                               for i in range(buckets[-1][0])]
        self.decoder_inputs = [tf.placeholder(tf.int32, shape=[None], name="decoder{0}".format(i))
                               for i in range(buckets[-1][1] + 1)]
        self.target_weights = [tf.placeholder(tf.float32, shape=[None], name="weight{0}".format(i))
                               for i in range(buckets[-1][1] + 1)]
        targets = [self.decoder_inputs[i + 1] for i in range(len(self.decoder_inputs) - 1)]

        self.outputs, self.losses = tf.contrib.legacy_seq2seq.model_with_buckets(
            self.encoder_inputs, self.decoder_inputs, targets, self.target_weights, buckets,
            lambda x, y: seq2seq_f(x, y, forward_only), softmax_loss_function=sampled_loss)
        if forward_only:
            for bucket_id in range(len(buckets)):
                self.outputs[bucket_id] = [tf.matmul(output, output_projection[0]) + output_projection[1]
                                           for output in self.outputs[bucket_id]]
        else:
            params = tf.trainable_variables()
            opt = tf.train.GradientDescentOptimizer(learning_rate)
            self.updates = []
            for bucket_id in range(len(buckets)):
                gradients = tf.gradients(self.losses[bucket_id], params)
                clipped_gradients, _ = tf.clip_by_global_norm(gradients, 5.0)
                self.updates.append(opt.apply_gradients(zip(clipped_gradients, params),
                                                        global_step=self.global_step))
        self.saver = tf.train.Saver(tf.global_variables())

    def get_batch(self, data, bucket_id):
        encoder_size, decoder_size = self.buckets[bucket_id]
        encoder_inputs, decoder_inputs = [], []
        for _ in range(self.batch_size):
            source, target = random.choice(data[bucket_id])
            encoder_inputs.append(list(reversed(source + [PAD_ID] * (encoder_size - len(source)))))
            decoder_inputs.append([GO_ID] + target + [PAD_ID] * (decoder_size - len(target) - 1))
        batch_encoder = [np.array([encoder_inputs[b][i] for b in range(self.batch_size)], dtype=np.int32)
                         for i in range(encoder_size)]
        batch_decoder, batch_weights = [], []
        for i in range(decoder_size):
            batch_decoder.append(np.array([decoder_inputs[b][i] for b in range(self.batch_size)], dtype=np.int32))
            weight = np.ones(self.batch_size, dtype=np.float32)
            for b in range(self.batch_size):
                if i == decoder_size - 1 or decoder_inputs[b][i + 1] == PAD_ID:
                    weight[b] = 0.0
            batch_weights.append(weight)
        return batch_encoder, batch_decoder, batch_weights

    def step(self, session, encoder_inputs, decoder_inputs, target_weights, bucket_id, forward_only):
        encoder_size, decoder_size = self.buckets[bucket_id]
        feed = {}
        for i in range(encoder_size):
            feed[self.encoder_inputs[i].name] = encoder_inputs[i]
        for i in range(decoder_size):
            feed[self.decoder_inputs[i].name] = decoder_inputs[i]
            feed[self.target_weights[i].name] = target_weights[i]
        feed[self.decoder_inputs[decoder_size].name] = np.zeros([self.batch_size], dtype=np.int32)
        if forward_only:
            return session.run([self.losses[bucket_id]] + self.outputs[bucket_id], feed)
        return session.run([self.updates[bucket_id], self.losses[bucket_id]], feed)[1]


def main():
    random.seed(0)
    np.random.seed(0)
    tf.set_random_seed(0)
    train_set, dev_set = make_data(400), make_data(50)
    checkpoint = os.path.join(tempfile.mkdtemp(), "translate.ckpt")

    with tf.Graph().as_default(), tf.Session() as sess:
        model = Seq2SeqModel(BUCKETS, SIZE, NUM_LAYERS, BATCH_SIZE, 0.5, NUM_SAMPLES)
        sess.run(tf.global_variables_initializer())
        names = [v.op.name for v in tf.global_variables()]
        assert len(names) == len(set(names)), "every bucket must share one set of variables"
        assert "embedding_attention_seq2seq/rnn/embedding_wrapper/embedding" in names
        first_losses, last_losses = [], []
        for step in range(80):
            bucket_id = step % len(BUCKETS)
            loss = model.step(sess, *model.get_batch(train_set, bucket_id), bucket_id=bucket_id, forward_only=False)
            (first_losses if step < 10 else last_losses).append(loss)
        assert np.mean(last_losses[-10:]) < 0.8 * np.mean(first_losses), (first_losses, last_losses)
        model.saver.save(sess, checkpoint, global_step=model.global_step)
        print("trained: loss %.3f -> %.3f" % (np.mean(first_losses), np.mean(last_losses[-10:])))

    with tf.Graph().as_default(), tf.Session() as sess:
        model = Seq2SeqModel(BUCKETS, SIZE, NUM_LAYERS, 1, 0.5, NUM_SAMPLES, forward_only=True)
        model.saver.restore(sess, tf.train.latest_checkpoint(os.path.dirname(checkpoint)))
        assert sess.run(model.global_step) == 80
        source, _ = dev_set[0][0]
        encoder_inputs, decoder_inputs, target_weights = model.get_batch({0: [(source, [])]}, 0)
        results = model.step(sess, encoder_inputs, decoder_inputs, target_weights, 0, forward_only=True)
        output_logits = results[1:]
        assert len(output_logits) == BUCKETS[0][1] and output_logits[0].shape == (1, VOCAB_SIZE)
        outputs = [int(np.argmax(logit, axis=1)[0]) for logit in output_logits]
        if EOS_ID in outputs:
            outputs = outputs[:outputs.index(EOS_ID)]
        print("greedy: %s -> %s (want %s)" % (source, outputs, translate(source)))
    print("translate_buckets: ok")


if __name__ == "__main__":
    main()
