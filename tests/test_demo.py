"""`tfstate demo` runs end to end, writes a PNG that opens, and its trained model beats the baselines it reports."""

import matplotlib.image
import numpy as np

from tfstate import demo
from tfstate.__main__ import main


def test_demo_trains_generates_and_writes_a_png(tmp_path, capsys):
    assert main(["demo", "--steps", "25", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "generated 150 steps in-graph after reading 300; error (MSE) of the continuation:" in printed
    assert "steps ahead   generated   repeat last value   stream mean" in printed
    path = tmp_path / "tfstate_demo.png"
    assert str(path) in printed
    image = matplotlib.image.imread(str(path))
    assert image.shape[0] > 400 and image.shape[1] > 600


def test_a_briefly_trained_demo_model_beats_both_baselines_on_the_near_horizon():
    result = demo.train_and_generate(200, seed=0, progress=lambda steps, total: steps)
    assert np.mean(result.losses[-10:]) < 0.2 * np.mean(result.losses[:10])
    (first, last, model, last_value, mean), *_ = result.errors()
    assert (first, last) == (1, 25)
    assert model < 0.5 * min(last_value, mean), result.errors()
    # the baselines are what they say: from the context alone, over the true continuation
    truth = result.streams[:, demo.CONTEXT + 1 : demo.CONTEXT + 26, 0]
    np.testing.assert_allclose(
        last_value, np.mean((truth - result.streams[:, demo.CONTEXT : demo.CONTEXT + 1, 0]) ** 2), rtol=1e-6
    )


def test_demo_refuses_a_nonpositive_step_count(tmp_path, capsys):
    assert main(["demo", "--steps", "0", "--out", str(tmp_path)]) == 2
    assert "--steps must be at least 1; got 0" in capsys.readouterr().out
