"""Chapter 10's data-parallel run: the chapter 03 VAE in PyTorch, in N processes on one machine.

Started by ``torchrun`` (one process per rank; it sets RANK, WORLD_SIZE, MASTER_ADDR/PORT)::

    python -m torch.distributed.run --nproc_per_node=2 --master_addr=127.0.0.1 \\
        --master_port=29500 -m minivae.course.torch_ddp --out ddp.json --epochs 10

or from Python with :func:`minivae.course.torch_bridge.torchrun`. Each process joins a ``gloo``
process group (CPU tensors, TCP over the loopback interface) and then

1. **checks the averaged gradient**, in float64: process r computes the gradient of the loss of
   its shard (rows r*B/N .. (r+1)*B/N of one batch of B, each shard's loss a mean over its own
   rows, as the course's loss always is), ``all_reduce`` sums the N gradients and each process
   divides by N. The result must be the gradient of the whole batch's loss computed in one
   process; so must DistributedDataParallel's, which does the same averaging during backward;
2. **trains** the float32 twin of ``minivae.VAE(seed=model_seed)`` wrapped in
   ``DistributedDataParallel``, on exactly the draws ``minivae.fit(..., batch_size=B,
   seed=seed)`` makes (the same permutation and eps in every process; each takes its shard of
   every minibatch), so its curve can be laid over the single-process ones.

Process 0 writes the results as JSON to ``--out`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..data import load_mnist_5k, train_test_split
from ..gradcheck import rel_error
from ..models import VAE
from .torch_bridge import TorchVAE, evaluate_like_minivae, minivae_grads


def shard_rows(n: int, rank: int, world_size: int) -> slice:
    """The rows of a batch of n that process ``rank`` takes: n / world_size consecutive ones.

    n must be a multiple of world_size: the average of N shard means is the mean of the whole
    batch only when the shards are equally large (a DistributedSampler pads the data so).
    """
    if n % world_size:
        raise ValueError(f"a batch of {n} does not split into {world_size} equal shards")
    size = n // world_size
    return slice(rank * size, (rank + 1) * size)


def _grads(twin: TorchVAE) -> dict[str, np.ndarray]:
    return {name: value.copy() for name, value in minivae_grads(twin).items()}


def gradient_check(model: VAE, x: np.ndarray, eps: np.ndarray, rank: int, world: int) -> dict:
    """The averaged shard gradients (by hand and by DDP) against the whole batch's, float64."""
    rows = shard_rows(len(x), rank, world)
    tx, teps = torch.from_numpy(x), torch.from_numpy(eps)

    whole = TorchVAE.from_minivae(model)  # one process, the whole batch
    whole_terms = whole(tx, teps)
    whole_terms["loss"].backward()
    reference = _grads(whole)

    twin = TorchVAE.from_minivae(model)
    twin(tx[rows], teps[rows])["loss"].backward()
    own = _grads(twin)  # this process's shard alone
    for p in twin.parameters():
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
    summed = _grads(twin)
    for p in twin.parameters():
        p.grad /= world
    averaged = _grads(twin)

    ddp = DistributedDataParallel(TorchVAE.from_minivae(model))
    ddp(tx[rows], teps[rows])["loss"].backward()  # DDP all-reduces and averages in backward
    by_ddp = _grads(ddp.module)

    def worst(grads: dict[str, np.ndarray]) -> float:
        return max(rel_error(grads[name], reference[name]) for name in reference)

    ratio = [float(np.sum(summed[n] * reference[n]) / np.sum(reference[n] ** 2)) for n in reference]
    return {
        "batch": len(x),
        "shard": rows.stop - rows.start,
        "loss_whole_batch": whole_terms["loss"].item(),
        "worst_rel_error_averaged": worst(averaged),
        "worst_rel_error_ddp": worst(by_ddp),
        "worst_rel_error_own_shard": worst(own),
        "summed_over_whole": [min(ratio), max(ratio)],
    }


def train(
    model: VAE, x_train: np.ndarray, x_val: np.ndarray, *, epochs: int, batch_size: int,
    lr: float, seed: int, rank: int, world: int,
) -> dict:
    """DDP training on minivae.fit's draws; returns the per-epoch history (the same in every
    process: the logged sums are all-reduced)."""
    twin = TorchVAE.from_minivae(model, torch.float32)
    ddp = DistributedDataParallel(twin)
    optimizer = torch.optim.Adam(ddp.parameters(), lr=lr)
    shuffle_rng = np.random.default_rng(seed)  # fit's shuffling
    eps_rng = np.random.default_rng(model.seed + 1)  # the model's generator, which fit draws from
    x_all = torch.from_numpy(np.asarray(x_train, dtype=np.float32))
    n = len(x_all)
    history: dict[str, dict[str, list[float]]] = {"train": {}, "val": {}}
    for epoch in range(epochs):
        order = torch.from_numpy(shuffle_rng.permutation(n))
        sums = torch.zeros(3, dtype=torch.float64)  # loss, recon, kl summed over own rows
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            eps = eps_rng.standard_normal((len(rows), twin.z_dim)).astype(np.float32)
            mine = shard_rows(len(rows), rank, world)
            terms = ddp(x_all[rows[mine]], torch.from_numpy(eps[mine]))
            optimizer.zero_grad()
            terms["loss"].backward()
            optimizer.step()
            count = mine.stop - mine.start
            sums += torch.tensor([terms[k].item() * count for k in ("loss", "recon", "kl")],
                                 dtype=torch.float64)
        dist.all_reduce(sums)
        for key, value in zip(("loss", "recon", "kl"), sums.tolist(), strict=True):
            history["train"].setdefault(key, []).append(value / n)
        for key, value in evaluate_like_minivae(twin, x_val, seed=epoch).items():
            history["val"].setdefault(key, []).append(value)
    return history


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(f.name, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minivae.course.torch_ddp",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file process 0 writes")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0, help="fit's seed (the shuffling)")
    parser.add_argument("--model-seed", type=int, default=0, help="the VAE's seed")
    parser.add_argument("--z-dim", type=int, default=12)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # N processes share the cores
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        x, y = load_mnist_5k(binarize=True)
        x_train, x_val, _, _ = train_test_split(x, y, seed=0, stratify=y)

        def make(dtype: str) -> VAE:  # the same initial weights in every process
            return VAE(x_train.shape[1], args.z_dim, tuple(args.hidden), seed=args.model_seed,
                       dtype=dtype)

        batch = x_train[: args.batch_size].astype(np.float64)
        eps = np.random.default_rng(12345).standard_normal((len(batch), args.z_dim))
        check = gradient_check(make("float64"), batch, eps, rank, world)
        history = train(make("float32"), x_train, x_val, epochs=args.epochs,
                        batch_size=args.batch_size, lr=args.lr, seed=args.seed, rank=rank,
                        world=world)
        if rank == 0:
            _write_json(args.out, {
                "world_size": world,
                "backend": dist.get_backend(),
                "torch": torch.__version__,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "gradient_check": check,
                "history": history,
            })
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
