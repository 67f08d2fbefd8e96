"""`python -m tfstate.benchmarks.keyed --quick` measures every keyed-state target (its speed is not tested)."""

import json
import subprocess
import sys


def test_quick_keyed_bench_reports_every_target(tmp_path):
    path = tmp_path / "keyed.json"
    process = subprocess.run(
        [sys.executable, "-m", "tfstate.benchmarks.keyed", "--quick", "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(path.read_text())
    assert result["memory"]["streams"] == result["config"]["streams"] and result["memory"]["ratio"] > 0
    overhead = result["overhead"]
    assert overhead["machinery_extra_ms"] == (
        overhead["keyed claim + read + keep alone"]["median_ms"] - overhead["RNNState read + keep alone"]["median_ms"]
    )
    for cell in ("LSTMCell", "LSTMBlockCell fast path"):
        keyed = overhead[f"{cell}, keyed keep"]
        assert keyed["ratio_to_rnnstate"] == keyed["median_ms"] / overhead[f"{cell}, RNNState keep"]["median_ms"]
    assert set(result["lookups"]) == {"4 keys", "128 keys"}
    serving = result["serving"]
    assert len(serving["latency"]) == 3 and len(serving["throughput"]) == 4
    assert all(entry["ratio_min"] <= entry["ratio"] <= entry["ratio_max"] for entry in serving["throughput"].values())
    assert "skipped" in result["torch"] or len(result["torch"]["latency"]) >= 2
    assert "memory:" in process.stdout and "serving throughput:" in process.stdout
