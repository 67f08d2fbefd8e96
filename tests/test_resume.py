"""Bit-exact resume: a training process killed (SIGKILL) after a checkpoint, started again with the same command,
ends bit-identical to one never interrupted: the same losses from the checkpoint on, the same weights and state.

The oracle is the uninterrupted run of the same deterministic program (tests/data/programs/stateful_resume.py).
"""

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

REPO = pathlib.Path(__file__).resolve().parent.parent
PROGRAM = REPO / "tests" / "data" / "programs" / "stateful_resume.py"
TIMEOUT_S = 180
STALL_AT = 6  # the checkpoint before it is at global step 4: steps 5 and 6 are lost with the process


def _command(folder):
    return [sys.executable, str(PROGRAM), str(folder)]


def _env(**extra):
    path = os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": path, **extra}


def _losses(stdout):
    """{global step: loss as float.hex()} from the program's output."""
    return dict(line.split() for line in stdout.splitlines() if line and line[0].isdigit())


def _checkpoint_values(folder, step):
    reader = tf.train.load_checkpoint(str(folder / f"model.ckpt-{step}"))
    variables = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    with np.load(folder / f"model.ckpt-{step}.tfstate.npz", allow_pickle=False) as snapshot:
        state = {name: snapshot[name] for name in snapshot.files if not name.startswith("__")}
    return variables, state


def test_a_run_killed_after_a_checkpoint_resumes_bit_identically_with_the_same_command(tmp_path):
    whole, cut = tmp_path / "uninterrupted", tmp_path / "killed"
    uninterrupted = subprocess.Popen(
        _command(whole), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    killed = subprocess.Popen(
        _command(cut),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(TFSTATE_TEST_STALL_AT=str(STALL_AT)),
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not (cut / "stalled").exists():
            assert killed.poll() is None, killed.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the run to kill never reached its stall point"
            time.sleep(0.1)
        os.kill(killed.pid, signal.SIGKILL)
        killed_out, _ = killed.communicate(timeout=TIMEOUT_S)
        assert killed.returncode == -signal.SIGKILL
        assert tf.train.latest_checkpoint(str(cut)).endswith("model.ckpt-4")

        resumed = subprocess.run(_command(cut), capture_output=True, text=True, env=_env(), timeout=TIMEOUT_S)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        whole_out, whole_err = uninterrupted.communicate(timeout=TIMEOUT_S)
        assert uninterrupted.returncode == 0, whole_err[-3000:]
    finally:
        for process in (uninterrupted, killed):
            if process.poll() is None:
                process.kill()
                process.wait()

    expected = _losses(whole_out)
    assert sorted(map(int, expected)) == list(range(1, 13))
    assert _losses(killed_out) == {step: expected[step] for step in map(str, range(1, STALL_AT))}
    assert _losses(resumed.stdout) == {step: expected[step] for step in map(str, range(5, 13))}
    (weights, state), (resumed_weights, resumed_state) = _checkpoint_values(whole, 12), _checkpoint_values(cut, 12)
    assert sorted(state) == ["rnn_state/c", "rnn_state/h"] and sorted(resumed_weights) == sorted(weights)
    for name in weights:
        np.testing.assert_array_equal(resumed_weights[name], weights[name], err_msg=name)
    for name in state:
        np.testing.assert_array_equal(resumed_state[name], state[name], err_msg=name)
    _, state_at_restart = _checkpoint_values(cut, 4)
    assert all(np.abs(value).max() > 0.01 for value in state_at_restart.values())  # a carried state, not zeros
