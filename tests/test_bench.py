"""`tfstate bench --quick` runs every framework's process and writes a report (its speed is not tested)."""

import json
import os
import subprocess
import sys

from tfstate import native
from tfstate.benchmarks.suite import (
    FAST_NATIVE,
    FAST_XLA,
    GEN_BASELINE,
    GEN_DEFAULT,
    GEN_LOOP,
    GRU_NATIVE,
    GRU_STREAM_BASELINE,
    GRU_TRAIN_BASELINE,
    GRU_XLA,
    KEEP_SESSION,
    KERAS_STATEFUL,
    STREAM_BASELINE,
    TORCH_GRU,
    TORCH_GRU_TRAIN,
    TORCH_LSTM,
    TORCH_LSTM_TRAIN,
    TRAIN_BASELINE,
)


def test_quick_bench_writes_markdown_and_json_for_every_variant(tmp_path):
    # run from a folder that has a `benchmarks` package of its own: the installed suite must never import it
    decoy = tmp_path / "benchmarks"
    decoy.mkdir()
    for name in ("__init__.py", "run.py", "suite.py"):
        (decoy / name).write_text("open(__file__ + '.imported', 'w').close()\nraise SystemExit(7)\n")
    json_path, markdown_path = tmp_path / "bench.json", tmp_path / "bench.md"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfstate",
            "bench",
            "--quick",
            "--layers",
            "1",
            "--json",
            str(json_path),
            "--markdown",
            str(markdown_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TFSTATE_NATIVE_THREADS": "2"},
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert not list(decoy.glob("*.imported"))
    results = json.loads(json_path.read_text())
    frameworks = results["frameworks"]
    assert results["machine"]["cores"] >= 1
    assert frameworks["tf"]["gemm_flops"] > 0
    tf_config = frameworks["tf"]["configs"][0]
    native_used = tf_config["native"] == "used"
    assert len(tf_config["streaming"]) == 5 + native_used and len(tf_config["generation"]) == 5
    assert (FAST_NATIVE in tf_config["streaming"]) == native_used
    assert KEEP_SESSION in tf_config["streaming"] and {GEN_DEFAULT, GEN_LOOP} <= set(tf_config["generation"])
    assert tf_config["streaming"][STREAM_BASELINE]["ratio"] == 1.0
    assert tf_config["generation"][GEN_BASELINE]["ratio"] == 1.0
    assert tf_config["op_count"]["before"] == tf_config["op_count"]["after"]
    assert len(tf_config["training"]) == 2 + native_used
    assert tf_config["training"][TRAIN_BASELINE]["ratio"] == 1.0
    gru_rows = [GRU_STREAM_BASELINE, GRU_XLA] + [GRU_NATIVE] * native_used
    assert list(tf_config["gru_streaming"]) == gru_rows
    assert list(tf_config["gru_training"]) == [GRU_TRAIN_BASELINE] + gru_rows[1:]
    facts = frameworks["tf"]["native"]  # which kernel variant ran, and the TFSTATE_* variables it saw
    assert facts["variant"] == (native.variant() if native_used else None)
    assert facts["env"]["TFSTATE_NATIVE_THREADS"] == "2"
    assert KERAS_STATEFUL in frameworks["keras"]["configs"][0]["streaming"]
    torch = frameworks["torch"]
    assert "skipped" in torch or TORCH_LSTM in torch["configs"][0]["streaming"]
    if "skipped" not in torch:
        torch_config = torch["configs"][0]
        assert TORCH_LSTM_TRAIN in torch_config["training"] and TRAIN_BASELINE in torch_config["training"]
        assert TORCH_GRU in torch_config["gru_streaming"] and TORCH_GRU_TRAIN in torch_config["gru_training"]
    markdown = markdown_path.read_text()
    assert f"| tf | {FAST_XLA}" in markdown and "compute bound" in markdown and "Training: one SGD step" in markdown
    assert f"| tf | {GRU_XLA}" in markdown and "GRU training: one SGD step" in markdown
    assert "- Compiled kernel, tf process: " in markdown and "TFSTATE_NATIVE_THREADS=2" in markdown
    assert native_used or f"No compiled-kernel row: {tf_config['native']}." in markdown
