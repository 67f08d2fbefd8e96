"""A TF1 seq2seq-with-attention program (tests/data/programs), ported by hand, trains, decodes and passes its checks.

The port is the mechanical one a user makes: TF1 names through `tf.compat.v1`, and the names
TensorFlow 2 no longer has from tfstate (`tf.contrib.seq2seq` -> `tfstate.seq2seq`, `tf.layers.Dense`
-> `tfstate.layers.Dense`, `tf.contrib.rnn` / `tf.nn.rnn_cell` -> `tfstate.rnn_cell`).
"""

import os
import pathlib
import subprocess
import sys

PROGRAMS = pathlib.Path(__file__).resolve().parent / "data" / "programs"
PORT = [
    ("import tensorflow as tf\n",
     "import tensorflow.compat.v1 as tf\nimport tfstate\n\ntf.disable_eager_execution()\n"),
    ("tf.contrib.seq2seq.", "tfstate.seq2seq."),
    ("tf.contrib.rnn.", "tfstate.rnn_cell."),
    ("tf.nn.rnn_cell.", "tfstate.rnn_cell."),
    ("tf.layers.Dense(", "tfstate.layers.Dense("),
    ("tf.nn.dynamic_rnn(", "tfstate.dynamic_rnn("),
]


def test_ported_tf1_attention_seq2seq_trains_then_decodes_greedily_and_with_beam_search(tmp_path):
    source = (PROGRAMS / "seq2seq_attention_tf1.py").read_text()
    for old, new in PORT:
        assert old in source, old
        source = source.replace(old, new)
    ported = tmp_path / "seq2seq_attention.py"
    ported.write_text(source)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROGRAMS.parents[2]), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, str(ported)], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("OK"), run.stdout
    assert "tfstate/seq2seq" not in run.stderr, run.stderr  # no warning points into tfstate.seq2seq
