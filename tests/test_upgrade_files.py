"""`tfstate upgrade` on files and the command line: what is read, what is written, and what is refused.

Every refusal names what was expected and what was given, and leaves every file as it was.
"""

import ast
import os
import stat
import threading

import pasta
import pytest
from pasta.base import ast_utils

import tfstate.upgrade.source
from tfstate.__main__ import main
from tfstate.upgrade import MAX_INPUT_BYTES, MAX_INPUT_CHARS, UpgradeError, pieces, upgrade_file, upgrade_source

TF1 = "import tensorflow as tf\ncell = tf.nn.rnn_cell.GRUCell(3)\n"
UPGRADED = "import tensorflow as tf\nimport tfstate\ncell = tfstate.rnn_cell.GRUCell(3)\n"


def _files(folder):
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.parametrize(
    "head, expected",
    [
        (
            "try: import tensorflow as tf\nexcept ImportError: tf = None\n",
            "try: import tensorflow as tf\nexcept ImportError: tf = None\nimport tfstate\n"
            "tf.compat.v1.disable_eager_execution()\n",
        ),
        (
            "x = len([]); import tensorflow as tf\n",
            "x = len([]); import tensorflow as tf\nimport tfstate\ntf.compat.v1.disable_eager_execution()\n",
        ),
        (
            "import tensorflow as tf; y = 1\n",
            "import tensorflow as tf; y = 1\nimport tfstate\ntf.compat.v1.disable_eager_execution()\n",
        ),
        (
            "import contextlib\nwith contextlib.suppress(ImportError): import tensorflow as tf\n",
            "import contextlib\nwith contextlib.suppress(ImportError): import tensorflow as tf\nimport tfstate\n"
            "tf.compat.v1.disable_eager_execution()\n",
        ),
        (
            "import sys\nif sys: import tensorflow as tf\n",
            "import sys\nif sys: import tensorflow as tf\nimport tfstate\ntf.compat.v1.disable_eager_execution()\n",
        ),
        (
            "if True:\n    import tensorflow as tf\n",
            "if True:\n    import tensorflow as tf\n    import tfstate\n    tf.compat.v1.disable_eager_execution()\n",
        ),
    ],
    ids=["try", "after_semicolon", "before_semicolon", "with", "if", "indented_block"],
)
def test_lines_added_after_a_tensorflow_import_sharing_its_line_go_after_the_whole_statement(head, expected):
    new_text, report = upgrade_source(head + "x = tf.placeholder(tf.float32)\ncell = tf.contrib.rnn.LSTMCell(3)\n")
    assert new_text == expected + "x = tf.compat.v1.placeholder(tf.float32)\ncell = tfstate.rnn_cell.LSTMCell(3)\n"
    ast.parse(new_text)
    assert not report.not_converted


def test_a_tensorflow_import_sharing_a_line_inside_a_function_gets_no_lines_and_says_what_to_add():
    text = "def main(): import tensorflow as tf; return tf.Session()\n"
    new_text, report = upgrade_source(text)
    assert new_text == "def main(): import tensorflow as tf; return tf.compat.v1.Session()\n"
    [entry] = report.not_converted
    assert entry.line == 1 and "add `tf.compat.v1.disable_eager_execution()` by hand" in entry.message


def test_an_upgrade_that_would_not_parse_is_an_error_and_nothing_is_written(tmp_path, monkeypatch):
    source, out = tmp_path / "model.py", tmp_path / "new.py"
    source.write_text(TF1)
    monkeypatch.setattr(tfstate.upgrade.source, "add_needed_lines", lambda text, *args: (text + "def (:\n", []))
    with pytest.raises(UpgradeError) as error:
        upgrade_file(str(source), str(out))
    assert str(error.value) == (
        f"{source}: the upgraded program would not parse (line 3: invalid syntax), so "
        "nothing was written; this is a defect of tfstate upgrade: please report it with "
        "this file."
    )
    assert main(["upgrade", str(source), "--in-place"]) == 1
    assert source.read_text() == TF1 and _files(tmp_path) == ["model.py"]


@pytest.mark.parametrize("where", ["input", "input_by_symlink", "input_by_hard_link", "output", "output_by_symlink"])
def test_a_report_that_is_the_input_or_the_output_is_refused_and_nothing_is_written(tmp_path, capsys, where):
    source, out = tmp_path / "model.py", tmp_path / "new.py"
    source.write_text(TF1)
    out.write_text("old output\n")
    target = source if where.startswith("input") else out
    report = {"input": source, "output": out}.get(where, tmp_path / "report.txt")
    if where.endswith("symlink"):
        report.symlink_to(target)
    elif where.endswith("hard_link"):
        os.link(target, report)
    assert main(["upgrade", str(source), "-o", str(out), "--report", str(report)]) == 2
    error = capsys.readouterr().err
    assert f"--report {report} is the same file as the {'input' if target == source else 'output (-o)'}" in error
    assert source.read_text() == TF1 and out.read_text() == "old output\n"


def test_a_report_that_is_an_in_place_input_is_refused(tmp_path, capsys):
    source = tmp_path / "model.py"
    source.write_text(TF1)
    assert main(["upgrade", str(source), "--in-place", "--report", str(source)]) == 2
    assert "is the same file as the input" in capsys.readouterr().err
    assert source.read_text() == TF1


@pytest.mark.parametrize("how", ["output", "in_place"])
def test_a_symlink_target_is_written_through_and_stays_a_link(tmp_path, how):
    real, link = tmp_path / "real.py", tmp_path / "link.py"
    real.write_text(TF1)
    link.symlink_to(real)
    args = [str(link), "--in-place"] if how == "in_place" else [str(tmp_path / "in.py"), "-o", str(link)]
    (tmp_path / "in.py").write_text(TF1)
    assert main(["upgrade"] + args) == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == UPGRADED
    assert _files(tmp_path) == ["in.py", "link.py", "real.py"]


def test_setuid_setgid_and_sticky_bits_are_never_copied_to_the_output(tmp_path):
    source, new, existing = tmp_path / "model.py", tmp_path / "new.py", tmp_path / "old.py"
    source.write_text(TF1)
    existing.write_text("old\n")
    source.chmod(0o7755)
    existing.chmod(0o6750)
    upgrade_file(str(source), str(new))
    upgrade_file(str(source), str(existing))
    assert stat.S_IMODE(new.stat().st_mode) == 0o755
    assert stat.S_IMODE(existing.stat().st_mode) == 0o750


@pytest.mark.parametrize(
    "make, kind",
    [
        (lambda path: os.mkfifo(path), "a FIFO"),
        (lambda path: path.symlink_to("/dev/zero"), "a character device"),
        (lambda path: path.mkdir(), "a directory"),
    ],
    ids=["fifo", "dev_zero", "dir"],
)
def test_an_input_that_is_not_a_regular_file_is_refused_at_once(tmp_path, capsys, make, kind):
    path = tmp_path / "input.py"
    make(path)
    status = []
    worker = threading.Thread(target=lambda: status.append(main(["upgrade", str(path)])), daemon=True)
    worker.start()
    worker.join(timeout=60)  # a FIFO must not wait for a writer, /dev/zero must not be read to the end
    assert status == [1]
    assert (
        f"{path}: not a regular file ({kind}); tfstate upgrade reads Python source files only."
        in capsys.readouterr().err
    )


def test_an_input_over_the_size_limit_is_refused_naming_the_limit(tmp_path, capsys):
    path = tmp_path / "huge.py"
    path.write_bytes(b"import tensorflow as tf\n" + b"# padding\n" * (MAX_INPUT_BYTES // 10))
    assert main(["upgrade", str(path), "-o", str(tmp_path / "out.py")]) == 1
    assert f"larger than {MAX_INPUT_BYTES} bytes (4 MiB), the most tfstate upgrade reads" in capsys.readouterr().err
    assert _files(tmp_path) == ["huge.py"]
    with pytest.raises(UpgradeError, match=f"takes programs of up to {MAX_INPUT_CHARS} characters"):
        upgrade_source("#" * (MAX_INPUT_CHARS + 1))


@pytest.mark.parametrize("terms, line", [(3000, None), (900, 4)])
def test_an_expression_nested_too_deeply_is_an_upgrade_error_not_a_recursion_error(tmp_path, capsys, terms, line):
    path = tmp_path / "deep.py"
    path.write_text("import tensorflow as tf\n\ny = 1\nx = " + " + ".join(["tf.ones([1])"] * terms) + "\nz = 2\n")
    assert main(["upgrade", str(path)]) == 1
    error = capsys.readouterr().err
    assert "Traceback" not in error and "nest" in error and "deeply" in error
    if line:
        assert f"{path}:{line}: the statement starting here nests expressions more deeply" in error


def test_pieces_hold_whole_top_level_statements_of_bounded_size():
    text = "import tensorflow as tf\n" + "".join(
        f"def f{i}(x):\n    '''Doc.'''\n    return tf.nn.relu(x[:, 1:])\n\n\n@staticmethod\ndef g{i}(): pass\n"
        for i in range(300)
    )
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    cut = pieces.cut(tree, lines)
    assert "".join(line for piece in cut for line in piece.lines) == text
    ends = [0] + [statement.end_lineno for statement in tree.body]
    longest = max(sum(map(len, lines[start:end])) for start, end in zip(ends, ends[1:]))  # with the lines before it
    assert max(sum(map(len, piece.lines)) for piece in cut) <= pieces.PIECE_CHARS + longest
    for piece in cut:
        ast.parse("".join(piece.lines))  # each piece parses on its own


class _NoSlicing(list):
    def __getitem__(self, key):
        assert not isinstance(key, slice), "pasta copied the rest of the token list"
        return super().__getitem__(key)


def test_pasta_looks_ahead_by_index_and_prints_into_chunks_so_time_is_linear():
    # pasta's own TokenGenerator.peek_conditional copies the rest of the tokens at every block and slice, and
    # its Printer copies the text at every token: a 360 KB program took 16 s and a 4.7 MB one did not finish.
    source = "".join(f"if x:\n    y{i} = z[1:, ::2]\nelse:\n\ty{i} = {{'a': [1, 2]}}  # c\n" for i in range(50))
    annotator = pieces._Annotator(source)
    annotator.tokens._tokens = _NoSlicing(annotator.tokens._tokens)
    tree = ast_utils.parse(source)
    annotator.visit(tree)
    assert pieces._pasta_dump(tree) == pasta.dump(tree) == source


def test_python2_file_is_refused_naming_file_and_line_and_nothing_is_written(tmp_path, capsys):
    script = tmp_path / "old.py"
    script.write_text("import tensorflow as tf\nx = tf.placeholder(tf.float32)\nprint x\n")
    out = tmp_path / "new.py"
    assert main(["upgrade", str(script), "-o", str(out)]) != 0
    error = capsys.readouterr().err
    assert f"{script}:3:" in error and "print x" in error and "Python 3" in error
    assert main(["upgrade", str(script), "--in-place"]) != 0
    assert script.read_text().endswith("print x\n")
    assert _files(tmp_path) == ["old.py"]


def test_in_place_rewrites_the_file_keeps_its_mode_and_prints_the_report(tmp_path, capsys):
    script = tmp_path / "train.py"
    script.write_text(TF1)
    script.chmod(0o755)
    assert main(["upgrade", str(script), "--in-place"]) == 0
    assert script.read_text() == UPGRADED
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert f"{script}:2:8: changed: Renamed 'tf.nn.rnn_cell.GRUCell'" in capsys.readouterr().out
    assert _files(tmp_path) == ["train.py"]


def test_several_files_in_place_are_upgraded_each_and_an_unparseable_one_is_left_alone(tmp_path, capsys):
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text("import tensorflow as tf\ns = tf.Session()\n")
    bad.write_text("import tensorflow as tf\nprint 'x'\n")
    assert main(["upgrade", str(good), str(bad), "--in-place"]) == 1
    assert "tf.compat.v1.Session()" in good.read_text()
    assert bad.read_text() == "import tensorflow as tf\nprint 'x'\n"
    assert f"{bad}:2:" in capsys.readouterr().err
    assert main(["upgrade", str(good), str(bad)]) == 2  # several files need --in-place


def test_without_output_the_source_goes_to_stdout_and_the_report_to_stderr(tmp_path, capsys):
    script = tmp_path / "s.py"
    script.write_text("import tensorflow as tf\nx = tf.placeholder(tf.float32)\n")
    assert main(["upgrade", str(script)]) == 0
    captured = capsys.readouterr()
    assert captured.out == (
        "import tensorflow as tf\ntf.compat.v1.disable_eager_execution()\nx = tf.compat.v1.placeholder(tf.float32)\n"
    )
    assert captured.err.splitlines() == [
        f"{script}:1:1: changed: added `tf.compat.v1.disable_eager_execution()` after line 1: sessions and "
        "placeholders need graph mode",
        f"{script}:2:5: changed: Renamed 'tf.placeholder' to 'tf.compat.v1.placeholder'",
        f"{script}: 2 changed, 0 check, 0 not converted",
    ]


def test_coding_cookie_and_crlf_line_endings_are_kept(tmp_path):
    script = tmp_path / "latin.py"
    script.write_bytes(
        "# -*- coding: latin-1 -*-\r\nimport tensorflow as tf\r\n# caf\xe9\r\ns = tf.Session()\r\n".encode("latin-1")
    )
    upgrade_file(str(script), str(script))
    assert script.read_bytes().decode("latin-1") == (
        "# -*- coding: latin-1 -*-\r\nimport tensorflow as tf\r\ntf.compat.v1.disable_eager_execution()\r\n"
        "# caf\xe9\r\ns = tf.compat.v1.Session()\r\n"
    )
