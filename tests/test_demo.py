"""`tfstate demo` runs end to end (briefly) and writes a PNG that opens."""

import matplotlib.image

from tfstate.__main__ import main


def test_demo_trains_generates_and_writes_a_png(tmp_path, capsys):
    assert main(["demo", "--steps", "25", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "generated 150 steps in-graph" in printed
    path = tmp_path / "tfstate_demo.png"
    assert str(path) in printed
    image = matplotlib.image.imread(str(path))
    assert image.shape[0] > 400 and image.shape[1] > 600


def test_demo_refuses_a_nonpositive_step_count(tmp_path, capsys):
    assert main(["demo", "--steps", "0", "--out", str(tmp_path)]) == 2
    assert "--steps must be at least 1; got 0" in capsys.readouterr().out
