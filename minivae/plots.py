"""Small plotting helpers for the demo and the notebooks: image grids and loss curves.

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    image_grid(model.sample(36), shape=(8, 8), ax=axes[0], title="samples from the prior")
    plot_reconstructions(x_test[:24], model.reconstruct(x_test[:24]), shape=(8, 8), ax=axes[1])
    plot_history(history, ax=axes[2])

matplotlib is a course dependency, not the library's: it is imported inside the functions that
draw. :func:`tile_images` needs NumPy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["image_grid", "pair_images", "plot_history", "plot_reconstructions", "tile_images"]

_MATPLOTLIB_MISSING = (
    "plotting needs matplotlib, which comes with the course's dependencies: "
    "pip install 'minivae[course]'  (or: pip install matplotlib)"
)


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(_MATPLOTLIB_MISSING) from err
    return plt


def _to_host(images: Any) -> np.ndarray:
    """A NumPy copy of ``images`` (CuPy arrays are copied to the host)."""
    if hasattr(images, "get") and not isinstance(images, np.ndarray):
        images = images.get()
    return np.asarray(images, dtype=np.float64)


def tile_images(
    images: Any,
    shape: tuple[int, int] = (8, 8),
    ncols: int | None = None,
    pad: int = 1,
    pad_value: float = 1.0,
) -> np.ndarray:
    """Arrange flat images in one 2-D array, row by row, with ``pad`` pixels between them.

    Args:
        images: (n, h * w) flat images, or (n, h, w).
        shape: (h, w) of one image; e.g. (8, 8) for the digits, (28, 28) for MNIST.
        ncols: images per row; default ceil(sqrt(n)) (a square-ish grid).
        pad: pixels of ``pad_value`` between and around the images.

    Returns:
        (rows * (h + pad) + pad, ncols * (w + pad) + pad) array; empty cells hold ``pad_value``.
    """
    images = _to_host(images)
    h, w = (int(s) for s in shape)
    if images.ndim == 3 and images.shape[1:] == (h, w):
        images = images.reshape(images.shape[0], h * w)
    if images.ndim != 2 or images.shape[1] != h * w:
        raise ValueError(
            f"images must be (n, {h * w}) flat or (n, {h}, {w}) for shape={shape}, "
            f"got shape {images.shape}"
        )
    n = images.shape[0]
    if n == 0:
        raise ValueError("images is empty; need at least one image to draw")
    if ncols is None:
        ncols = int(np.ceil(np.sqrt(n)))
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    ncols = min(int(ncols), n)
    nrows = int(np.ceil(n / ncols))
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise ValueError(f"pad must be an integer >= 0, got {pad!r}")
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), pad_value, dtype=np.float64)
    for i in range(n):
        r, c = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        out[top : top + h, left : left + w] = images[i].reshape(h, w)
    return out


def image_grid(
    images: Any,
    shape: tuple[int, int] = (8, 8),
    ncols: int | None = None,
    ax: Any = None,
    title: str | None = None,
    cmap: str = "gray",
    vmin: float = 0.0,
    vmax: float = 1.0,
    pad: int = 1,
) -> Any:
    """Draw flat images (n, h * w) as one grid on ``ax`` (a new figure if None); returns ``ax``.

    Pixel values are shown on a fixed scale [vmin, vmax] (default [0, 1]) so that grids of
    originals, reconstructions and samples are comparable; the padding is drawn at ``vmax``.
    """
    plt = _pyplot()
    grid = tile_images(images, shape, ncols, pad=pad, pad_value=vmax)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4 * grid.shape[0] / grid.shape[1]))
    ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
    return ax


def pair_images(x: Any, x_hat: Any, shape: tuple[int, int] = (8, 8), gap: int = 1) -> np.ndarray:
    """Each original beside its reconstruction, as one image per pair.

    x, x_hat: (n, h * w) flat (or (n, h, w)), the same n. Returns (n, h, 2 * w + gap): the
    original ``x[i]`` on the left, ``x_hat[i]`` on the right, ``gap`` columns of NaN between them
    (drawn in the colour map's "bad" colour by :func:`image_grid`, so a pair reads as a pair).
    """
    x, x_hat = _to_host(x), _to_host(x_hat)
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {x.shape} and {x_hat.shape}")
    h, w = (int(s) for s in shape)
    if x.size == 0 or x.size % (h * w) or x.shape[0] * h * w != x.size:
        raise ValueError(
            f"x must be (n, {h * w}) flat or (n, {h}, {w}) for shape={shape}, got shape {x.shape}"
        )
    if isinstance(gap, bool) or not isinstance(gap, (int, np.integer)) or gap < 0:
        raise ValueError(f"gap must be an integer >= 0, got {gap!r}")
    n = x.shape[0]
    left, right = x.reshape(n, h, w), x_hat.reshape(n, h, w)
    spacer = np.full((n, h, int(gap)), np.nan)
    return np.concatenate([left, spacer, right], axis=2)


def plot_reconstructions(
    x: Any,
    x_hat: Any,
    shape: tuple[int, int] = (8, 8),
    ncols: int | None = None,
    ax: Any = None,
    title: str | None = "pairs: original (left), reconstruction (right)",
    gap: int = 1,
    **kwargs: Any,
) -> Any:
    """One grid of pairs: each original ``x[i]`` with its reconstruction ``x_hat[i]`` beside it.

    x, x_hat: (n, h * w) each, the same n. ``ncols`` pairs per row (default: a square-ish grid);
    ``gap`` columns in light blue separate the two images of a pair, ``pad`` (default 3) white
    pixels separate the pairs. Other keyword arguments (cmap, vmin, vmax) go to the image.
    Returns ``ax``.
    """
    pairs = pair_images(x, x_hat, shape, gap)
    h, pair_w = pairs.shape[1:]
    vmin, vmax = kwargs.get("vmin", 0.0), kwargs.get("vmax", 1.0)
    pad = kwargs.get("pad", 3)
    grid = tile_images(pairs, (h, pair_w), ncols, pad=pad, pad_value=vmax)
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 8 * grid.shape[0] / grid.shape[1]))
    cmap = plt.get_cmap(kwargs.get("cmap", "gray")).with_extremes(bad=(0.55, 0.7, 0.9))
    ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
    return ax


def _history_tables(history: Any) -> tuple[Mapping[str, Sequence[float]], Mapping]:
    if hasattr(history, "train") and hasattr(history, "val"):
        return history.train, history.val
    if isinstance(history, Mapping) and "train" in history:
        return history["train"], history.get("val", {})
    raise TypeError(
        "history must be a minivae History (from fit) or a dict "
        "{'train': {term: [per-epoch values]}, 'val': {...}}, "
        f"got {type(history).__name__}"
    )


_TERM_STYLE = {
    "loss": ("black", "total (negative ELBO)"),
    "recon": ("tab:blue", "reconstruction"),
    "kl": ("tab:orange", "KL"),
}


def plot_history(
    history: Any,
    ax: Any = None,
    terms: Sequence[str] = ("recon", "kl"),
    title: str | None = "loss per epoch",
    log_y: bool = False,
) -> Any:
    """Loss curves per epoch: train solid, held-out dashed, one colour per term.

    Args:
        history: the :class:`minivae.train.History` returned by ``fit`` (``history.train[term]``
            and ``history.val[term]`` are per-epoch means), or the same as a dict.
        terms: which terms to draw; by default the reconstruction term and the KL, the two parts
            of the negative ELBO (add ``"loss"`` for their sum). Terms absent from the history
            (an autoencoder has no KL) are skipped.
        log_y: a logarithmic y axis, when the terms differ by orders of magnitude.

    Returns ``ax``. The y axis is in nats per example (the library's loss convention).
    """
    train, val = _history_tables(history)
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    drawn = 0
    for term in terms:
        color, label = _TERM_STYLE.get(term, (None, term))
        for table, style, split in ((train, "-", "train"), (val, "--", "held-out")):
            values = table.get(term) if table else None
            if not values:
                continue
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, style, color=color, label=f"{label}, {split}")
            drawn += 1
    if drawn == 0:
        raise ValueError(
            f"nothing to plot: none of the terms {list(terms)} is in the history "
            f"(it has {sorted(train)})"
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per example")
    if log_y:
        ax.set_yscale("log")
    if title is not None:
        ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax
