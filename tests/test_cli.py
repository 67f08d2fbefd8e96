"""The `tfstate` command line: its version, its help without TensorFlow, and output free of TF's start-up noise."""

import os
import re
import subprocess
import sys

import tfstate

# TensorFlow's C++ log lines: "I0000 00:00:..." (absl, TF 2.17+) or "2026-01-01 00:00:00.000: I ..." (TF 2.16)
_TF_LOG_LINE = re.compile(
    r"^[IWEF]\d{4} |^\d{4}-\d\d-\d\d [\d:.]+: [IWEF] |All log messages before absl::InitializeLog", re.M
)


def _tfstate(*args, env=None):
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", "tfstate", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**environment, **(env or {})},
    )


def test_version_and_help_answer_without_importing_tensorflow():
    code = (
        "import sys; from tfstate.__main__ import main\n"
        "for argv in (['--version'], ['--help']):\n"
        "    try: main(argv)\n"
        "    except SystemExit: pass\n"
        "print('tensorflow imported:', 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"tfstate {tfstate.__version__}" in result.stdout
    assert "upgrade" in result.stdout and "tensorflow imported: False" in result.stdout


def test_commands_print_no_tensorflow_start_up_lines_unless_the_user_asks(tmp_path):
    script = tmp_path / "old.py"
    script.write_text("import tensorflow as tf\nsess = tf.Session()\n")
    quiet = _tfstate("upgrade", str(script), "-o", str(tmp_path / "new.py"))
    assert quiet.returncode == 0, quiet.stderr
    assert not _TF_LOG_LINE.search(quiet.stderr), quiet.stderr
    assert quiet.stdout.splitlines()[-1] == f"{script}: 2 changed, 0 check, 0 not converted"
    chatty = _tfstate("upgrade", str(script), "-o", str(tmp_path / "new.py"), env={"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert chatty.returncode == 0 and _TF_LOG_LINE.search(chatty.stderr)  # the user's own setting is honoured


def test_an_unknown_command_is_a_usage_error():
    result = _tfstate("frobnicate")
    assert result.returncode == 2 and "invalid choice: 'frobnicate'" in result.stderr


def test_tfstate_generate_stays_the_function_whatever_is_imported_first():
    # the function lives in tfstate.generation: no submodule import can shadow it on the package
    code = (
        "import tfstate.generation, tfstate.demo, tfstate\n"
        "print(callable(tfstate.generate), tfstate.generate.__module__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["True", "tfstate.generation"], result.stderr[-2000:]
