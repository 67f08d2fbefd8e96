"""A TF1 PTB-style word language model, written as the TensorFlow models tutorial wrote it (TensorFlow 1.x).

The reader slices a word stream into batches with a queue (tf.train.range_input_producer and
tf.strided_slice); the model is an embedding, DropoutWrapper'd BasicLSTMCells in a MultiRNNCell unrolled
with tf.nn.static_rnn over tf.unstack, and contrib.seq2seq.sequence_loss; train, valid and test models share
variables through variable_scope reuse; the final state is carried between session.runs through feed_dict
over `for i, (c, h) in enumerate(model.initial_state)`; the learning rate decays with tf.assign; a
tf.train.Supervisor runs the queues and saves. The script checks its own claim: the evaluation model's
perplexity over the stream, run one step at a time with the state carried, equals the perplexity of the
whole stream run at once.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import tempfile

import numpy as np
import tensorflow as tf

flags = tf.flags
flags.DEFINE_string("save_path", None, "Model output directory.")
FLAGS = flags.FLAGS


class SmallConfig(object):
    init_scale = 0.1
    learning_rate = 1.0
    max_grad_norm = 5
    num_layers = 2
    num_steps = 5
    hidden_size = 8
    max_epoch = 1
    max_max_epoch = 2
    keep_prob = 0.8
    lr_decay = 0.5
    batch_size = 2
    vocab_size = 10


def ptb_producer(raw_data, batch_size, num_steps, name=None):
    with tf.name_scope(name, "PTBProducer", [raw_data, batch_size, num_steps]):
        raw_data = tf.convert_to_tensor(raw_data, name="raw_data", dtype=tf.int32)
        data_len = tf.size(raw_data)
        batch_len = data_len // batch_size
        data = tf.reshape(raw_data[0: batch_size * batch_len], [batch_size, batch_len])
        epoch_size = (batch_len - 1) // num_steps
        assertion = tf.assert_positive(epoch_size, message="epoch_size == 0, decrease batch_size or num_steps")
        with tf.control_dependencies([assertion]):
            epoch_size = tf.identity(epoch_size, name="epoch_size")
        i = tf.train.range_input_producer(epoch_size, shuffle=False).dequeue()
        x = tf.strided_slice(data, [0, i * num_steps], [batch_size, (i + 1) * num_steps])
        x.set_shape([batch_size, num_steps])
        y = tf.strided_slice(data, [0, i * num_steps + 1], [batch_size, (i + 1) * num_steps + 1])
        y.set_shape([batch_size, num_steps])
        return x, y


class PTBInput(object):
    def __init__(self, config, data, name=None):
        self.batch_size = batch_size = config.batch_size
        self.num_steps = num_steps = config.num_steps
        self.epoch_size = ((len(data) // batch_size) - 1) // num_steps
        self.input_data, self.targets = ptb_producer(data, batch_size, num_steps, name=name)


class PTBModel(object):
    def __init__(self, is_training, config, input_):
        self._input = input_
        batch_size = input_.batch_size
        num_steps = input_.num_steps
        size = config.hidden_size
        vocab_size = config.vocab_size

        def lstm_cell():
            return tf.contrib.rnn.BasicLSTMCell(
                size, forget_bias=0.0, state_is_tuple=True, reuse=tf.get_variable_scope().reuse)

        attn_cell = lstm_cell
        if is_training and config.keep_prob < 1:
            def attn_cell():
                return tf.contrib.rnn.DropoutWrapper(lstm_cell(), output_keep_prob=config.keep_prob)
        cell = tf.contrib.rnn.MultiRNNCell([attn_cell() for _ in range(config.num_layers)], state_is_tuple=True)
        self._initial_state = cell.zero_state(batch_size, tf.float32)

        with tf.device("/cpu:0"):
            embedding = tf.get_variable("embedding", [vocab_size, size], dtype=tf.float32)
            inputs = tf.nn.embedding_lookup(embedding, input_.input_data)
        if is_training and config.keep_prob < 1:
            inputs = tf.nn.dropout(inputs, config.keep_prob)

        inputs = tf.unstack(inputs, num=num_steps, axis=1)
        outputs, state = tf.nn.static_rnn(cell, inputs, initial_state=self._initial_state)
        output = tf.reshape(tf.stack(axis=1, values=outputs), [-1, size])
        softmax_w = tf.get_variable("softmax_w", [size, vocab_size], dtype=tf.float32)
        softmax_b = tf.get_variable("softmax_b", [vocab_size], dtype=tf.float32)
        logits = tf.nn.xw_plus_b(output, softmax_w, softmax_b)
        logits = tf.reshape(logits, [batch_size, num_steps, vocab_size])
        loss = tf.contrib.seq2seq.sequence_loss(
            logits, input_.targets, tf.ones([batch_size, num_steps], dtype=tf.float32),
            average_across_timesteps=False, average_across_batch=True)
        self._cost = cost = tf.reduce_sum(loss)
        self._final_state = state
        if not is_training:
            return

        self._lr = tf.Variable(0.0, trainable=False)
        tvars = tf.trainable_variables()
        grads, _ = tf.clip_by_global_norm(tf.gradients(cost, tvars), config.max_grad_norm)
        optimizer = tf.train.GradientDescentOptimizer(self._lr)
        self._train_op = optimizer.apply_gradients(
            zip(grads, tvars), global_step=tf.contrib.framework.get_or_create_global_step())
        self._new_lr = tf.placeholder(tf.float32, shape=[], name="new_learning_rate")
        self._lr_update = tf.assign(self._lr, self._new_lr)

    def assign_lr(self, session, lr_value):
        session.run(self._lr_update, feed_dict={self._new_lr: lr_value})

    @property
    def input(self):
        return self._input

    @property
    def initial_state(self):
        return self._initial_state

    @property
    def cost(self):
        return self._cost

    @property
    def final_state(self):
        return self._final_state

    @property
    def lr(self):
        return self._lr

    @property
    def train_op(self):
        return self._train_op


def run_epoch(session, model, eval_op=None):
    costs = 0.0
    iters = 0
    state = session.run(model.initial_state)
    fetches = {"cost": model.cost, "final_state": model.final_state}
    if eval_op is not None:
        fetches["eval_op"] = eval_op
    for step in range(model.input.epoch_size):
        feed_dict = {}
        for i, (c, h) in enumerate(model.initial_state):
            feed_dict[c] = state[i].c
            feed_dict[h] = state[i].h
        vals = session.run(fetches, feed_dict)
        cost = vals["cost"]
        state = vals["final_state"]
        costs += cost
        iters += model.input.num_steps
    return np.exp(costs / iters)


def main(_):
    rng = np.random.RandomState(0)
    train_data = list(rng.randint(0, SmallConfig.vocab_size, 200))
    valid_data = list(rng.randint(0, SmallConfig.vocab_size, 42))
    config = SmallConfig()
    eval_config = SmallConfig()
    eval_config.batch_size = 1
    eval_config.num_steps = 1
    whole_config = SmallConfig()
    whole_config.batch_size = 1
    whole_config.num_steps = len(valid_data) - 1

    with tf.Graph().as_default():
        initializer = tf.random_uniform_initializer(-config.init_scale, config.init_scale)
        with tf.name_scope("Train"):
            train_input = PTBInput(config=config, data=train_data, name="TrainInput")
            with tf.variable_scope("Model", reuse=None, initializer=initializer):
                m = PTBModel(is_training=True, config=config, input_=train_input)
            tf.summary.scalar("Training Loss", m.cost)
            tf.summary.scalar("Learning Rate", m.lr)
        with tf.name_scope("Test"):
            test_input = PTBInput(config=eval_config, data=valid_data, name="TestInput")
            with tf.variable_scope("Model", reuse=True, initializer=initializer):
                mtest = PTBModel(is_training=False, config=eval_config, input_=test_input)
        with tf.name_scope("Whole"):
            whole_input = PTBInput(config=whole_config, data=valid_data, name="WholeInput")
            with tf.variable_scope("Model", reuse=True, initializer=initializer):
                mwhole = PTBModel(is_training=False, config=whole_config, input_=whole_input)

        sv = tf.train.Supervisor(logdir=FLAGS.save_path or tempfile.mkdtemp())
        with sv.managed_session() as session:
            for i in range(config.max_max_epoch):
                lr_decay = config.lr_decay ** max(i + 1 - config.max_epoch, 0.0)
                m.assign_lr(session, config.learning_rate * lr_decay)
                train_perplexity = run_epoch(session, m, eval_op=m.train_op)
                print("Epoch: %d Learning rate: %.3f Train Perplexity: %.3f"
                      % (i + 1, session.run(m.lr), train_perplexity))
            stepped = run_epoch(session, mtest)
            whole = run_epoch(session, mwhole)
            step = tf.train.global_step(session, tf.train.get_global_step())
            sv.saver.save(session, sv.save_path, global_step=sv.global_step)
        np.testing.assert_allclose(stepped, whole, rtol=1e-5)
        assert step == config.max_max_epoch * m.input.epoch_size, step
        print("ptb_lm: %d one-step runs with the state carried give the perplexity of one run (%.3f)"
              % (mtest.input.epoch_size, stepped))


if __name__ == "__main__":
    tf.app.run()
