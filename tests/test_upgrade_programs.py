"""TF1 programs in every import spelling, upgraded with `tfstate upgrade` and run to completion.

Each program in tests/data/upgrade/*_tf1.py is written as TF1 code was (it does not run on TensorFlow 2 as
it is) and checks its own claim against an oracle (a static unroll against dynamic_rnn, chunks with the
state fed back against one run, each direction of a bidirectional RNN against a one-way run, the event
file against the losses, ...) before printing `<name>: ...`. The tests upgrade each one, run the upgraded
program in a subprocess, compare the report with <name>.report line by line, and check the report
against the real before/after text. All programs run once, in parallel (a module fixture).
"""

import concurrent.futures
import contextlib
import difflib
import io
import os
import pathlib
import subprocess
import sys

import pytest

from tfstate.__main__ import main
from tfstate.upgrade import CHANGED, KINDS

DATA = pathlib.Path(__file__).resolve().parent / "data" / "upgrade"
PROGRAMS = sorted(path.name[: -len("_tf1.py")] for path in DATA.glob("*_tf1.py"))
TIMEOUT_S = 180


def _run(path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=TIMEOUT_S, env=env, cwd=path.parent
    )


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory):
    """{name: (exit status of the upgrade, report text with the input path as its bare name, upgraded text,
    CompletedProcess of the upgraded program)}."""
    folder = tmp_path_factory.mktemp("upgraded")
    results = {}
    for name in PROGRAMS:
        source, out, report = DATA / f"{name}_tf1.py", folder / f"{name}.py", folder / f"{name}.report"
        with contextlib.redirect_stdout(io.StringIO()):
            status = main(["upgrade", str(source), "-o", str(out), "--report", str(report)])
        results[name] = (status, report.read_text().replace(str(source), source.name), out.read_text())
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(PROGRAMS, pool.map(_run, [folder / f"{name}.py" for name in PROGRAMS])))
    return {name: results[name] + (runs[name],) for name in PROGRAMS}


def test_every_spelling_and_rule_has_a_program():
    assert PROGRAMS == [
        "char_rnn",
        "contrib_rnn_module",
        "contrib_rnn_names",
        "ctc_speech",
        "meta_graph",
        "poem_generator",
        "ptb_lm",
        "python_ops",
        "seq2seq_attention",
        "seq2seq_tutorial",
        "stateful_lstm",
        "summaries_flags",
        "text_classifier",
        "tf1_alias",
        "translate_buckets",
        "variational_dropout",
    ]


@pytest.mark.parametrize("name", PROGRAMS)
def test_upgraded_program_runs_to_completion_and_passes_its_checks(upgraded, name):
    status, _, _, run = upgraded[name]
    assert status == 0
    assert run.returncode == 0, f"{name} exited {run.returncode}:\n{run.stdout}\n{run.stderr[-4000:]}"
    assert run.stdout.strip().splitlines()[-1].startswith(f"{name}: "), run.stdout


@pytest.mark.parametrize("name", PROGRAMS)
def test_report_lists_exactly_the_expected_lines(upgraded, name):
    _, report, _, _ = upgraded[name]
    assert report.splitlines() == (DATA / f"{name}.report").read_text().splitlines()


@pytest.mark.parametrize("name", PROGRAMS)
def test_report_tells_the_truth_about_the_text(upgraded, name):
    _, report, new_text, _ = upgraded[name]
    old_text = (DATA / f"{name}_tf1.py").read_text()
    assert_report_matches_text(old_text, new_text, report)


def assert_report_matches_text(old_text, new_text, report):
    """Every line the upgrade changed has a `changed` line in the report, every `changed` line is on a line the
    upgrade changed (or added lines after), and the summary's counts equal the lines: checked against a diff
    of the real before/after text, independent of how the report was made."""
    *lines, summary = report.splitlines()
    kinds = [line.split(": ")[1] for line in lines]
    reported = {int(line.split(":")[1]) for line, kind in zip(lines, kinds) if kind == CHANGED}
    may_report, must_report = set(), set()
    matcher = difflib.SequenceMatcher(None, old_text.splitlines(), new_text.splitlines(), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        must_report |= set(range(i1 + 1, i2 + 1)) or {max(i1, 1)}  # changed lines, or the line before an insertion
        may_report |= set(range(i1 + 1, i2 + 1)) | ({max(i1, 1)} if j2 > j1 else set())  # lines added after i1
    assert must_report <= reported, sorted(must_report - reported)
    assert reported <= may_report, sorted(reported - may_report)
    assert summary.split(": ", 1)[1] == ", ".join(f"{kinds.count(kind)} {kind}" for kind in KINDS)
