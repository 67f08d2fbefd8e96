"""A TF1 poem generator, written as the TF1 poem/lyrics generators wrote it (TensorFlow 1.x).

Characters come from a tf.data pipeline (from_tensor_slices, batch, repeat, make_one_shot_iterator) into
tf.nn.rnn_cell.LSTMCells (xavier-initialized) in a MultiRNNCell under tf.nn.dynamic_rnn, trained with
contrib.seq2seq.sequence_loss in a tf.train.MonitoredTrainingSession with a StopAtStepHook and checkpoints.
Generation keeps its state in one placeholder of shape [layers, 2, 1, units], unstacked into a tuple of
LSTMStateTuples, and samples in-graph with tf.multinomial. The script checks its own claims: a generation
loop fed its own state (stacked back into the placeholder) gives the same logits as one dynamic_rnn over the
same characters, and the training session stopped at the hook's step with a checkpoint of that step.
"""
import tempfile

import numpy as np
import tensorflow as tf

POEM = "roses are red, violets are blue; sugar is sweet, and so are you. "
CHARS = sorted(set(POEM))
VOCAB, UNITS, LAYERS, SEQ, BATCH, STEPS = len(CHARS), 8, 2, 5, 3, 12

ids = np.array([CHARS.index(c) for c in POEM], dtype=np.int32)
windows = np.stack([ids[i:i + SEQ + 1] for i in range(len(ids) - SEQ - 1)])


def build(inputs, initial_state=None, batch_size=None):
    with tf.variable_scope("poem", reuse=tf.AUTO_REUSE):
        embedding = tf.get_variable("embedding", [VOCAB, UNITS], initializer=tf.contrib.layers.xavier_initializer())
        cell = tf.nn.rnn_cell.MultiRNNCell(
            [tf.nn.rnn_cell.LSTMCell(UNITS, initializer=tf.contrib.layers.xavier_initializer())
             for _ in range(LAYERS)])
        if initial_state is None:
            initial_state = cell.zero_state(batch_size, tf.float32)
        outputs, state = tf.nn.dynamic_rnn(cell, tf.nn.embedding_lookup(embedding, inputs),
                                           initial_state=initial_state)
        logits = tf.layers.dense(outputs, VOCAB, name="softmax")
    return logits, state


dataset = tf.data.Dataset.from_tensor_slices(windows).shuffle(64, seed=0).repeat().batch(BATCH)
batch = dataset.make_one_shot_iterator().get_next()
train_logits, _ = build(batch[:, :-1], batch_size=BATCH)
loss = tf.contrib.seq2seq.sequence_loss(train_logits, batch[:, 1:], tf.ones([BATCH, SEQ]))
global_step = tf.train.get_or_create_global_step()
train_op = tf.train.AdamOptimizer(0.02).minimize(loss, global_step=global_step)

# Generation: the state lives in one placeholder, fed back after each character.
state_in = tf.placeholder(tf.float32, [LAYERS, 2, 1, UNITS], name="state_in")
layers = tf.unstack(state_in, axis=0)
rnn_tuple_state = tuple(tf.nn.rnn_cell.LSTMStateTuple(layer[0], layer[1]) for layer in layers)
char_in = tf.placeholder(tf.int32, [1, None], name="char_in")
step_logits, step_state = build(char_in, initial_state=rnn_tuple_state)
state_out = tf.stack([tf.stack([c, h]) for c, h in step_state])
sample = tf.multinomial(step_logits[:, -1], 1, seed=0)

checkpoint_dir = tempfile.mkdtemp()
hooks = [tf.train.StopAtStepHook(last_step=STEPS)]
with tf.train.MonitoredTrainingSession(checkpoint_dir=checkpoint_dir, hooks=hooks,
                                       save_summaries_steps=None, log_step_count_steps=0) as sess:
    while not sess.should_stop():
        step, _ = sess.run([global_step, train_op])

saver = tf.train.Saver()
with tf.Session() as sess:
    saver.restore(sess, tf.train.latest_checkpoint(checkpoint_dir))
    restored_step = sess.run(global_step)
    prime = ids[:SEQ]
    state = np.zeros([LAYERS, 2, 1, UNITS], dtype=np.float32)
    stepped = []
    for char in prime:
        logits, state = sess.run([step_logits, state_out], {char_in: [[char]], state_in: state})
        stepped.append(logits[0, -1])
    at_once = sess.run(step_logits, {char_in: [prime], state_in: np.zeros([LAYERS, 2, 1, UNITS])})
    poem = []
    for _ in range(20):
        drawn, state = sess.run([sample, state_out], {char_in: [[char]], state_in: state})
        char = int(drawn[0, 0])
        poem.append(CHARS[char])

np.testing.assert_allclose(np.array(stepped), at_once[0], rtol=1e-5, atol=1e-6)
assert restored_step == STEPS, restored_step
print("poem_generator: a loop feeding its state placeholder equals one run; trained %d steps, sampled %r"
      % (restored_step, "".join(poem)))
