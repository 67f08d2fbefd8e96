"""A TF1 program that saves its graph and variables, then re-imports them with import_meta_graph (TensorFlow 1.x).

Uses: tf.Variable (with and without `collections`), tf.assign_add, tf.train.Saver, tf.train.export_meta_graph
through saver.save, tf.reset_default_graph, tf.train.import_meta_graph, and the re-imported variables
fetched and updated by tensor name ('counter:0'), as TF1 code does.
Checks: the re-imported counter holds the saved value, counts on through its tensor name, and the
variable kept in a custom collection comes back in it.
"""
import os
import tempfile

import numpy as np
import tensorflow as tf

path = os.path.join(tempfile.mkdtemp(), "model")
counter = tf.Variable(0, name="counter", trainable=False)
scale = tf.Variable(np.float32(2.0), name="scale", collections=[tf.GraphKeys.GLOBAL_VARIABLES, "state"])
increment = tf.assign_add(counter, 1)
with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for _ in range(3):
        sess.run(increment)
    tf.train.Saver().save(sess, path)

tf.reset_default_graph()
saver = tf.train.import_meta_graph(path + ".meta")
graph = tf.get_default_graph()
restored = graph.get_tensor_by_name("counter:0")
step = tf.assign_add(restored, 10)
with tf.Session() as sess:
    saver.restore(sess, path)
    assert sess.run(restored) == 3, sess.run(restored)
    assert sess.run(step) == 13
    [kept] = tf.get_collection("state")
    assert sess.run(kept) == 2.0
print("meta_graph: re-imported variables keep their values and TF1 semantics by tensor name")
