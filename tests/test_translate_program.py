"""A TF1 translate-tutorial-style program (buckets, embedding_attention_seq2seq, sampled softmax, Saver, greedy
decoding), ported by hand to tfstate, runs to completion and passes its own checks."""

import os
import pathlib
import subprocess
import sys

PROGRAM = pathlib.Path(__file__).resolve().parent / "data" / "programs" / "translate_buckets_tf1.py"


def port_by_hand(source):
    """The port a user makes: TF1's API from tf.compat.v1 in graph mode, tf.contrib's seq2seq and cells from tfstate."""
    ported = source.replace("import tensorflow as tf\n", "import tensorflow.compat.v1 as tf\n\nimport tfstate\n\n"
                                                         "tf.disable_eager_execution()\n", 1)
    ported = ported.replace("tf.contrib.legacy_seq2seq.", "tfstate.legacy_seq2seq.")
    return ported.replace("tf.contrib.rnn.", "tfstate.rnn_cell.")


def test_ported_translate_program_trains_saves_restores_and_decodes(tmp_path):
    ported = port_by_hand(PROGRAM.read_text())
    assert "tf.contrib." not in ported.split('"""', 2)[2]  # the code; the docstring may still say it
    path = tmp_path / "translate_buckets.py"
    path.write_text(ported)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-4000:]}"
    assert result.stdout.strip().endswith("translate_buckets: ok"), result.stdout
