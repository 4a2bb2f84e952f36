"""Tests for the demo (``python -m minivae demo``) and the plotting helpers in minivae.plots."""

from __future__ import annotations

import builtins
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minivae import __main__ as cli
from minivae.plots import image_grid, plot_history, plot_reconstructions, tile_images
from minivae.train import History

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG (starts with {data[:8]!r})"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.endswith(b"IEND\xaeB`\x82"), f"{path} is truncated (no IEND chunk at the end)"
    return width, height


@pytest.fixture
def pyplot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


# ----------------------------------------------------------------------------------------------
# plots
# ----------------------------------------------------------------------------------------------


def test_tile_images_places_each_image():
    images = np.arange(5 * 6, dtype=np.float64).reshape(5, 6)  # five 2x3 images
    grid = tile_images(images, shape=(2, 3), ncols=2, pad=1, pad_value=-1.0)
    assert grid.shape == (3 * (2 + 1) + 1, 2 * (3 + 1) + 1)
    np.testing.assert_array_equal(grid[1:3, 1:4], images[0].reshape(2, 3))
    np.testing.assert_array_equal(grid[1:3, 5:8], images[1].reshape(2, 3))
    np.testing.assert_array_equal(grid[4:6, 1:4], images[2].reshape(2, 3))
    np.testing.assert_array_equal(grid[7:9, 1:4], images[4].reshape(2, 3))
    assert (grid[7:9, 5:8] == -1.0).all()  # the sixth cell is empty
    assert (grid[0] == -1.0).all() and (grid[:, 0] == -1.0).all()


def test_tile_images_default_square_and_3d_input():
    grid = tile_images(np.zeros((9, 4, 4)), shape=(4, 4), pad=0)
    assert grid.shape == (12, 12)
    grid = tile_images(np.zeros((2, 16)), shape=(4, 4), ncols=10, pad=0)
    assert grid.shape == (4, 8)  # never more columns than images


def test_tile_images_errors():
    with pytest.raises(ValueError, match=r"\(n, 64\).*got shape \(3, 63\)"):
        tile_images(np.zeros((3, 63)), shape=(8, 8))
    with pytest.raises(ValueError, match="empty"):
        tile_images(np.zeros((0, 64)))
    with pytest.raises(ValueError, match="ncols"):
        tile_images(np.zeros((3, 64)), ncols=0)
    with pytest.raises(ValueError, match="pad"):
        tile_images(np.zeros((3, 64)), pad=-1)


def test_image_grid_draws_on_given_axes(pyplot):
    fig, ax = pyplot.subplots()
    images = np.random.default_rng(0).random((10, 64))
    out = image_grid(images, shape=(8, 8), ncols=5, ax=ax, title="ten")
    assert out is ax and ax.get_title() == "ten"
    (shown,) = ax.get_images()
    assert shown.get_array().shape == (2 * 9 + 1, 5 * 9 + 1)
    assert shown.get_clim() == (0.0, 1.0)


def test_plot_reconstructions(pyplot):
    x = np.random.default_rng(0).random((4, 64))
    ax = plot_reconstructions(x, 1 - x, shape=(8, 8), ncols=2, gap=3)
    (shown,) = ax.get_images()
    array = np.asarray(shown.get_array())
    left_width = 2 * 9 + 1
    assert array.shape == (2 * 9 + 1, 2 * left_width + 3)
    np.testing.assert_allclose(array[1:9, 1:9], x[0].reshape(8, 8))
    right = left_width + 3
    np.testing.assert_allclose(array[1:9, right + 1 : right + 9], 1 - x[0].reshape(8, 8))
    with pytest.raises(ValueError, match="same shape"):
        plot_reconstructions(x, x[:3])


def test_plot_history_train_and_held_out(pyplot):
    history = History()
    for epoch in range(4):
        history.append("train", {"loss": 30 - epoch, "recon": 25 - epoch, "kl": 5.0})
        history.append("val", {"loss": 31 - epoch, "recon": 26 - epoch, "kl": 5.0})
    ax = plot_history(history)
    lines = ax.get_lines()
    assert len(lines) == 4  # recon and KL, train and held-out
    labels = [line.get_label() for line in lines]
    assert labels == [
        "reconstruction, train",
        "reconstruction, held-out",
        "KL, train",
        "KL, held-out",
    ]
    np.testing.assert_array_equal(lines[1].get_ydata(), [26, 25, 24, 23])
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3, 4])
    assert lines[0].get_linestyle() == "-" and lines[1].get_linestyle() == "--"
    assert ax.get_xlabel() == "epoch" and "nats" in ax.get_ylabel()


def test_plot_history_dict_and_missing_terms(pyplot):
    # an autoencoder's history has no KL and here no held-out data
    ax = plot_history({"train": {"loss": [3.0, 2.0], "recon": [3.0, 2.0]}})
    assert [line.get_label() for line in ax.get_lines()] == ["reconstruction, train"]
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_history({"train": {"loss": [1.0]}}, terms=("kl",))
    with pytest.raises(TypeError, match="History"):
        plot_history([1.0, 2.0])


def test_missing_matplotlib_message(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install 'minivae\[course\]'"):
        image_grid(np.zeros((1, 64)))


# ----------------------------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------------------------


def test_cli_without_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "demo" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [["demo", "--epochs", "0"], ["demo", "--seed", "-1"], ["demo", "--epochs", "many"], ["train"]],
)
def test_cli_rejects_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_demo_without_matplotlib_fails_clearly(monkeypatch, tmp_path, capsys):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    code = cli.main(["demo", "--out", str(tmp_path / "d.png"), "--epochs", "1", "--quiet"])
    assert code == 1
    assert "needs matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "d.png").exists()


@pytest.mark.slow
def test_demo_writes_png_and_reports(tmp_path, capsys, pyplot):
    pytest.importorskip("sklearn")
    out = tmp_path / "sub" / "demo.png"  # the folder is created
    assert cli.main(["demo", "--out", str(out), "--epochs", "3", "--seed", "1", "--quiet"]) == 0
    width, height = png_size(out)
    assert width > 1000 and height > 300
    pixels = pyplot.imread(out)  # decodes: a valid PNG, not just a valid header
    assert pixels.shape[:2] == (height, width)
    assert pixels[..., :3].std() > 0.1  # not a blank canvas
    printed = capsys.readouterr().out
    assert f"wrote {out.resolve()}" in printed
    assert "held-out negative ELBO:" in printed and "run time:" in printed
    neg_elbo = float(printed.split("held-out negative ELBO:")[1].split()[0])
    # after 3 epochs on the digits: well below the ~44 nats of an untrained model, above 15
    assert 15.0 < neg_elbo < 40.0


@pytest.mark.slow
def test_demo_is_reproducible(tmp_path, pyplot):
    pytest.importorskip("sklearn")
    a = cli.run_demo(tmp_path / "a.png", epochs=2, seed=3, progress=False)
    b = cli.run_demo(tmp_path / "b.png", epochs=2, seed=3, progress=False)
    c = cli.run_demo(tmp_path / "c.png", epochs=2, seed=4, progress=False)
    for key in ("neg_elbo", "recon", "kl", "neg_log_px_iwae"):
        assert a[key] == b[key], key
    assert a["neg_elbo"] != c["neg_elbo"]
    assert a["neg_log_px_iwae"] <= a["neg_elbo"] + 1.0  # the k=100 bound is (nearly) tighter


@pytest.mark.slow
def test_python_dash_m_minivae_demo(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    out = tmp_path / "demo.png"
    result = subprocess.run(
        [sys.executable, "-m", "minivae", "demo", "--out", str(out), "--epochs", "1", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "held-out negative ELBO" in result.stdout
    png_size(out)
