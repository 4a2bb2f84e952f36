"""Command line: ``python -m minivae demo`` (also installed as the ``minivae`` command).

    python -m minivae demo [--out PATH] [--epochs N] [--seed S]

trains a VAE on scikit-learn's 8x8 digits and writes one PNG: held-out originals beside their
reconstructions, samples from the prior, and the loss curve split into reconstruction and KL on
the training and held-out data. It prints where it wrote the PNG, the held-out negative ELBO and
the run time.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEMO_CONFIG = {"z_dim": 8, "hidden": (256,), "likelihood": "bernoulli"}
DEMO_EPOCHS = 150
DEMO_BATCH_SIZE = 64
DEMO_LR = 2e-3


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
    demo = commands.add_parser(
        "demo",
        help="train a VAE on the 8x8 digits and write one PNG",
        description=(
            "Train a VAE (z_dim 8, one hidden layer of 256, Bernoulli decoder) on "
            "scikit-learn's 8x8 digits and write one PNG: held-out originals beside their "
            "reconstructions, samples from the prior, and the loss split into reconstruction "
            "and KL on training and held-out data."
        ),
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("minivae-demo.png"),
        help="where to write the PNG (default: ./minivae-demo.png)",
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


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Limit BLAS to one thread while training, if threadpoolctl is there (scikit-learn brings it).

    The demo's matrices are small (64 x 256); on a busy machine, OpenBLAS threads waiting for each
    other cost many times the arithmetic (measured: 40 epochs in 18 s of CPU time with the default
    threads, 0.5 s with one thread, on 2 shared cores).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def run_demo(
    out: Path, epochs: int = DEMO_EPOCHS, seed: int = 0, progress: bool = True
) -> dict[str, float]:
    """Train the demo VAE, write the PNG to ``out``, return the held-out numbers.

    Returns ``{"neg_elbo", "recon", "kl", "neg_log_px_iwae", "seconds"}``: the held-out negative
    ELBO and its two parts (nats per example, one sample of z each, averaged over 10 draws of
    eps), an importance-sampled (k = 100) upper bound on -log p(x), and the run time.
    """
    start = time.perf_counter()
    # the Agg backend draws to files and needs no display; select it before pyplot is imported
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError(
            "the demo needs matplotlib: pip install 'minivae[course]'  (or: pip install matplotlib)"
        ) from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .data import load_digits, train_test_split
    from .models import VAE
    from .plots import image_grid, plot_history, plot_reconstructions
    from .train import evaluate, fit

    x, _ = load_digits()
    x_train, x_test = train_test_split(x, test_fraction=0.2, seed=seed)
    model = VAE(x_dim=64, seed=seed, **DEMO_CONFIG)
    with _one_blas_thread():
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

    n_show = 36
    x_show = x_test[:n_show]
    x_hat = model.reconstruct(x_show)
    samples = model.sample(n_show, rng=np.random.default_rng(seed))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [2.05, 1, 1.35]})
    plot_reconstructions(
        x_show,
        x_hat,
        shape=(8, 8),
        ncols=6,
        ax=axes[0],
        title="held-out digits (left) and their reconstructions (right)",
    )
    image_grid(samples, shape=(8, 8), ncols=6, ax=axes[1], title="samples from the prior")
    plot_history(history, ax=axes[2], terms=("recon", "kl"), title="loss: reconstruction and KL")
    # Bernoulli cross-entropy on grey levels x in [0, 1] cannot go below their entropy
    p = np.clip(x_test.astype(np.float64), 1e-12, 1 - 1e-12)
    floor = float(-(p * np.log(p) + (1 - p) * np.log1p(-p)).sum(axis=1).mean())
    axes[2].axhline(floor, ls=":", color="tab:blue", label="lowest possible reconstruction")
    axes[2].legend(fontsize="small")
    fig.suptitle(
        f"VAE on the 8x8 digits (z_dim {DEMO_CONFIG['z_dim']}, hidden {DEMO_CONFIG['hidden']}, "
        f"Bernoulli), {epochs} epochs: held-out negative ELBO {held_out['loss']:.2f} nats "
        f"(reconstruction {held_out['recon']:.2f} + KL {held_out['kl']:.2f})"
    )
    fig.tight_layout()
    out = Path(out)
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return {
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
    except ImportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {Path(args.out).resolve()}")
    print(
        f"held-out negative ELBO: {result['neg_elbo']:.2f} nats per digit "
        f"(reconstruction {result['recon']:.2f} + KL {result['kl']:.2f})"
    )
    print(f"held-out -log p(x) <= {result['neg_log_px_iwae']:.2f} nats (importance sampled, k=100)")
    print(f"run time: {result['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
