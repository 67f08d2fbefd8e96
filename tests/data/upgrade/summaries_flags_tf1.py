"""A TF1 training script with flags, logging and TensorBoard summaries, started by tf.app.run (TensorFlow 1.x).

Uses: tf.flags.DEFINE_* and tf.app.flags.DEFINE_*, FLAGS = tf.flags.FLAGS, logging = tf.logging,
tf.logging.set_verbosity, tf.summary.scalar / histogram / merge_all / FileWriter, tf.app.run(main).
Checks: the event file holds every step's loss under the summary's tag, and the loss went down.
"""
import os
import tempfile

import numpy as np
import tensorflow as tf

logging = tf.logging
tf.flags.DEFINE_integer("steps", 6, "training steps")
tf.app.flags.DEFINE_float("learning_rate", 0.1, "learning rate")
FLAGS = tf.flags.FLAGS


def main(_):
    tf.logging.set_verbosity(tf.logging.INFO)
    x = tf.placeholder(tf.float32, [None, 3])
    weights = tf.get_variable("weights", [3, 1], initializer=tf.zeros_initializer())
    loss = tf.reduce_mean(tf.square(tf.matmul(x, weights) - 1.0))
    tf.summary.scalar("loss", loss)
    tf.summary.histogram("weights", weights)
    merged = tf.summary.merge_all()
    train = tf.train.GradientDescentOptimizer(FLAGS.learning_rate).minimize(loss)
    logdir = tempfile.mkdtemp()
    data = np.random.RandomState(4).rand(8, 3).astype(np.float32)
    losses = []
    with tf.Session() as sess:
        writer = tf.summary.FileWriter(logdir, sess.graph)
        sess.run(tf.global_variables_initializer())
        for step in range(FLAGS.steps):
            summary, value, _ = sess.run([merged, loss, train], {x: data})
            writer.add_summary(summary, step)
            losses.append(value)
            logging.info("step %d loss %.4f", step, value)
        writer.close()
    [events] = [os.path.join(logdir, name) for name in os.listdir(logdir)]
    logged = [v.simple_value for e in tf.train.summary_iterator(events) for v in e.summary.value if v.tag == "loss"]
    np.testing.assert_allclose(logged, losses, rtol=1e-6)
    assert losses[-1] < losses[0]
    print("summaries_flags: the event file holds every step's loss and the loss went down")


if __name__ == "__main__":
    tf.app.run(main)
