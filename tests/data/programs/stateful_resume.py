"""Trains a stateful LSTM under MonitoredTrainingSession with checkpoints; run again, it resumes where they stopped.

    python stateful_resume.py CHECKPOINT_DIR

Streams are read in chunks, the state kept across them (`tfstate.StateHook`) and reset every
pass of CHUNKS_PER_PASS chunks; a checkpoint, with the state's snapshot beside it, every
SAVE_STEPS global steps; training stops at LAST_STEP. The setup is deterministic (op
determinism, fixed seeds, one thread), so a run killed and started again with the same command
ends bit-identical to one that was never interrupted. Prints "<global step> <loss as float.hex>"
per run. TFSTATE_TEST_STALL_AT=S (for the test): after global step S, write CHECKPOINT_DIR/stalled
and wait to be killed.
"""

import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfstate  # noqa: E402

BATCH, CHUNK, CHUNKS_PER_PASS, UNITS = 4, 5, 3, 8
SAVE_STEPS, LAST_STEP = 4, 12


def chunk(step):
    """Inputs and next-value targets of the chunk run at global step `step` (the same in every process)."""
    index = step % CHUNKS_PER_PASS
    phases = np.random.RandomState(0).uniform(0, 2 * np.pi, [BATCH, 1])
    time_steps = np.arange(index * CHUNK, (index + 1) * CHUNK + 1)[None, :]
    wave = np.sin(0.3 * time_steps + phases).astype(np.float32)[:, :, None]
    return wave[:, :-1], wave[:, 1:]


class StallAt(tf.compat.v1.train.SessionRunHook):
    """After the run that brings the global step to `step`, writes `marker` and sleeps (the test kills the process)."""

    def __init__(self, step, marker):
        self._step, self._marker = step, marker

    def after_run(self, run_context, run_values):
        if run_context.session.run(tf.compat.v1.train.get_global_step()) == self._step:
            self._marker.write_text("stalled")
            time.sleep(600)


def main(checkpoint_dir):
    tf.compat.v1.disable_eager_execution()
    tf.config.experimental.enable_op_determinism()
    tf.compat.v1.set_random_seed(0)
    x = tf.compat.v1.placeholder(tf.float32, [BATCH, CHUNK, 1], name="x")
    y = tf.compat.v1.placeholder(tf.float32, [BATCH, CHUNK, 1], name="y")
    rnn = tfstate.stateful_dynamic_rnn(tfstate.LSTMCell(UNITS), x, batch_size=BATCH)
    loss = tf.reduce_mean(tf.square(tfstate.layers.dense(rnn.outputs, 1) - y))
    global_step = tf.compat.v1.train.get_or_create_global_step()
    train_op = tf.compat.v1.train.AdamOptimizer(0.01).minimize(loss, global_step=global_step)

    state_hook = tfstate.StateHook(rnn, reset_every_n_steps=CHUNKS_PER_PASS, checkpoint_dir=checkpoint_dir)
    hooks = [state_hook,
             tf.compat.v1.train.CheckpointSaverHook(checkpoint_dir, save_steps=SAVE_STEPS,
                                                    listeners=[state_hook.listener()]),
             tf.compat.v1.train.StopAtStepHook(last_step=LAST_STEP)]
    if "TFSTATE_TEST_STALL_AT" in os.environ:
        hooks.append(StallAt(int(os.environ["TFSTATE_TEST_STALL_AT"]), pathlib.Path(checkpoint_dir) / "stalled"))
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    with tf.compat.v1.train.MonitoredTrainingSession(
            checkpoint_dir=checkpoint_dir, hooks=hooks, config=config, save_checkpoint_secs=None,
            save_checkpoint_steps=None, save_summaries_steps=None, save_summaries_secs=None,
            log_step_count_steps=None) as sess:
        step = sess.run_step_fn(lambda step_context: step_context.session.run(global_step))
        while not sess.should_stop():
            inputs, targets = chunk(step)
            _, value = sess.run([train_op, loss], {x: inputs, y: targets})
            step += 1
            print(step, float(value).hex(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
