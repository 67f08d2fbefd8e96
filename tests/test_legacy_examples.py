"""legacy_examples/: every ported recipe runs and passes its own checks, and every TF1 form,
after `tfstate upgrade`, runs on current TensorFlow and passes the same checks.

All programs run once, in parallel subprocesses (a module fixture), so the file takes about as
long as the slowest few of them; each test then reads its program's result.
"""

import ast
import concurrent.futures
import contextlib
import io
import os
import pathlib
import subprocess
import sys

import pytest

from tfstate.__main__ import main

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "legacy_examples"
RECIPES = sorted(path.stem for path in EXAMPLES.glob("*.py"))
TF1_RECIPES = sorted(path.stem for path in (EXAMPLES / "tf1").glob("*.py"))
TIMEOUT_S = 180


def _run(path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=TIMEOUT_S, env=env, cwd=path.parent
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """{(kind, recipe): (CompletedProcess, upgrade report)}: the ported programs and the upgraded TF1 forms, run."""
    folder = tmp_path_factory.mktemp("upgraded")
    programs, reports = {}, {}
    for recipe in TF1_RECIPES:
        out = folder / f"{recipe}.py"
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            status = main(["upgrade", str(EXAMPLES / "tf1" / f"{recipe}.py"), "-o", str(out)])
        reports[recipe] = (status, printed.getvalue())
        if status == 0:
            programs["tf1", recipe] = out
    programs.update({("ported", recipe): EXAMPLES / f"{recipe}.py" for recipe in RECIPES})
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(_run, path) for key, path in programs.items()}
        runs = {key: future.result() for key, future in futures.items()}
    return runs, reports


def _check(result, name):
    assert result.returncode == 0, f"{name} exited {result.returncode}:\n{result.stdout}\n{result.stderr[-4000:]}"
    assert result.stdout.strip().startswith(name), result.stdout


def test_every_recipe_has_a_tf1_form():
    assert RECIPES == TF1_RECIPES
    assert RECIPES == [
        "every_timestep_state",
        "generate_feedback",
        "keyed_streams",
        "lstm_state_anatomy",
        "set_state",
        "stateful_lstm",
    ]


@pytest.mark.parametrize("recipe", RECIPES)
def test_ported_example_runs_and_passes_its_checks(results, recipe):
    runs, _ = results
    _check(runs["ported", recipe], recipe)


@pytest.mark.parametrize("recipe", TF1_RECIPES)
def test_upgraded_tf1_form_runs_on_current_tensorflow(results, recipe):
    runs, reports = results
    status, report = reports[recipe]
    assert status == 0, report
    assert "0 not converted" in report, report
    _check(runs["tf1", recipe], recipe)


@pytest.mark.parametrize(
    "path",
    sorted(EXAMPLES.glob("*.py")) + sorted((EXAMPLES / "tf1").glob("*.py")),
    ids=lambda path: f"{path.parent.name}/{path.name}",
)
def test_examples_need_only_tensorflow_and_numpy(path):
    imports = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imports.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imports.add(node.module.split(".")[0])
    assert imports <= {"os", "subprocess", "sys", "time", "tempfile", "numpy", "tensorflow", "tfstate"}, imports
