"""minivae's models in PyTorch, for chapter 10: the twins, their weights, and how to run them.

Imports PyTorch, so neither ``minivae`` nor ``minivae.course`` imports this module; chapter 10's
notebooks, :mod:`minivae.course.ch10_pytorch` and :mod:`minivae.course.torch_ddp` do.

- :class:`TorchVAE`, :class:`TorchVQVAE`: ``nn.Module`` twins of ``minivae.VAE`` (Bernoulli) and
  ``minivae.models.VQVAE``, built from a minivae model's sizes and loaded with its weights.
  minivae stores a linear layer's weight as ``W`` (n_in, n_out) with ``out = x @ W + b``;
  ``nn.Linear`` stores the transpose, ``weight`` (n_out, n_in). :func:`minivae_grads` reads the
  gradients back in minivae's names and layout.
- :func:`autograd_nodes`, :func:`nodes_by_stage`: the backward graph behind a tensor, and which
  of its nodes each step of the forward pass added.
- :func:`fit_like_minivae`: PyTorch training that draws exactly what ``minivae.fit`` draws (the
  shuffling from ``fit``'s seed, ``eps`` from the model's generator, validation ``eps`` from
  ``evaluate``'s), so the two runs can be laid over each other.
- :func:`torchrun`: starts a module in N processes with ``torch.distributed.run`` on this
  machine (loopback only); :func:`run_world`: runs a Python function in N forked processes
  joined in a ``gloo`` process group (the problem set's checks use it).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "TorchVAE",
    "TorchVQVAE",
    "WorldError",
    "autograd_nodes",
    "copy_to_minivae",
    "draw_backward_graph",
    "evaluate_like_minivae",
    "fit_like_minivae",
    "free_port",
    "grad_or_zeros",
    "load_mlp",
    "minivae_grads",
    "minivae_params",
    "mlp_grads",
    "mlp_twin",
    "nearest_code",
    "nodes_by_stage",
    "run_world",
    "straight_through",
    "to_numpy",
    "torchrun",
    "vector_quantize",
]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _torch_dtype(dtype: Any) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    name = np.dtype(dtype).name
    if name not in DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}")
    return DTYPES[name]


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A NumPy copy of a tensor (detached, on the CPU)."""
    return tensor.detach().cpu().numpy().copy()


# ---------------------------------------------------------------------------------------------
# Weights: minivae's W (n_in, n_out) is nn.Linear's weight.T
# ---------------------------------------------------------------------------------------------


def mlp_twin(mlp: Any, params: Any, dtype: Any = torch.float64) -> nn.Sequential:
    """An ``nn.Sequential`` equal to the minivae ``MLP`` ``mlp``, with its weights from ``params``.

    Linear -> activation -> ... -> Linear, as ``mlp.forward``; ``linear.weight = W.T``.
    """
    if mlp.activation_name not in ACTIVATIONS:
        raise ValueError(f"no PyTorch twin for the activation {mlp.activation_name!r}")
    modules: list[nn.Module] = []
    for i in range(mlp.n_layers):
        modules.append(nn.Linear(mlp.sizes[i], mlp.sizes[i + 1], dtype=_torch_dtype(dtype)))
        if i < mlp.n_layers - 1:
            modules.append(ACTIVATIONS[mlp.activation_name]())
    net = nn.Sequential(*modules)
    load_mlp(net, mlp, params)
    return net


def _linears(net: nn.Sequential) -> list[nn.Linear]:
    return [m for m in net if isinstance(m, nn.Linear)]


def load_mlp(net: nn.Sequential, mlp: Any, params: Any) -> None:
    """Copy minivae's ``W{i}``, ``b{i}`` (prefix of ``mlp``) into ``net``'s Linear layers."""
    linears = _linears(net)
    if len(linears) != mlp.n_layers:
        raise ValueError(f"net has {len(linears)} Linear layers, the MLP {mlp.n_layers}")
    for i, linear in enumerate(linears):
        w, b = mlp.names(i)
        W = np.asarray(params[w])
        if linear.weight.shape != W.T.shape:
            raise ValueError(f"{w}: shape {W.shape} does not fit {tuple(linear.weight.shape)}.T")
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            linear.bias.copy_(torch.from_numpy(np.array(params[b])))


def _mlp_pairs(twin: nn.Module) -> list[tuple[str, nn.Sequential]]:
    return [("encoder.", twin.encoder), ("decoder.", twin.decoder)]


def minivae_params(twin: nn.Module) -> dict[str, np.ndarray]:
    """The twin's weights under minivae's names and layout (``encoder.W0`` = weight.T ...)."""
    out: dict[str, np.ndarray] = {}
    for prefix, net in _mlp_pairs(twin):
        for i, linear in enumerate(_linears(net)):
            out[f"{prefix}W{i}"] = to_numpy(linear.weight).T.copy()
            out[f"{prefix}b{i}"] = to_numpy(linear.bias)
    if isinstance(twin, TorchVQVAE):
        out["codebook"] = to_numpy(twin.codebook)
    return out


def mlp_grads(net: nn.Sequential, prefix: str) -> dict[str, np.ndarray]:
    """The ``.grad`` of ``net``'s Linear layers as minivae's ``{prefix}W{i}`` (= weight.grad.T)
    and ``{prefix}b{i}``; zeros where no gradient reached a parameter (``.grad`` is None)."""
    out: dict[str, np.ndarray] = {}
    for i, linear in enumerate(_linears(net)):
        out[f"{prefix}W{i}"] = grad_or_zeros(linear.weight).T.copy()
        out[f"{prefix}b{i}"] = grad_or_zeros(linear.bias)
    return out


def grad_or_zeros(p: torch.Tensor) -> np.ndarray:
    """p.grad as a NumPy copy; zeros of p's shape where no gradient reached p (None)."""
    return np.zeros(tuple(p.shape)) if p.grad is None else to_numpy(p.grad)


def minivae_grads(twin: nn.Module) -> dict[str, np.ndarray]:
    """The twin's ``.grad`` of every parameter under minivae's names and layout.

    A parameter whose ``.grad`` is None (no gradient reached it) gives zeros.
    """
    out: dict[str, np.ndarray] = {}
    for prefix, net in _mlp_pairs(twin):
        out.update(mlp_grads(net, prefix))
    if isinstance(twin, TorchVQVAE):
        out["codebook"] = grad_or_zeros(twin.codebook)
    return out


def copy_to_minivae(twin: nn.Module, model: Any) -> None:
    """Write the twin's weights into the minivae ``model`` (cast to its dtype)."""
    for name, value in minivae_params(twin).items():
        model.params[name] = np.asarray(value, dtype=model.dtype)


# ---------------------------------------------------------------------------------------------
# The twins
# ---------------------------------------------------------------------------------------------


class TorchVAE(nn.Module):
    """``minivae.VAE(likelihood="bernoulli")`` in PyTorch.

        h = encoder(x);  mu, logvar = h[:, :J], h[:, J:]            x: (B, D), h: (B, 2J)
        z = mu + exp(0.5 * logvar) * eps                          eps: (B, J), given
        recon = (1/B) sum_{b,d} BCE-with-logits(decoder(z), x)    (summed over pixels)
        kl = -(1/(2B)) sum_{b,j} (1 + logvar - mu^2 - exp(logvar)),   loss = recon + beta * kl
    """

    def __init__(
        self,
        x_dim: int,
        z_dim: int,
        hidden: Sequence[int],
        activation: str = "relu",
        beta: float = 1.0,
        dtype: Any = torch.float64,
    ):
        super().__init__()
        self.x_dim, self.z_dim, self.beta = int(x_dim), int(z_dim), float(beta)
        dtype = _torch_dtype(dtype)
        self.encoder = _sequential([x_dim, *hidden, 2 * z_dim], activation, dtype)
        self.decoder = _sequential([z_dim, *reversed(hidden), x_dim], activation, dtype)

    @classmethod
    def from_minivae(cls, model: Any, dtype: Any = torch.float64) -> TorchVAE:
        """The twin of a Bernoulli ``minivae.VAE``, with its weights (in ``dtype``)."""
        if model.likelihood.name != "bernoulli":
            raise ValueError(
                f"TorchVAE is Bernoulli; the model's likelihood is {model.likelihood.name}"
            )
        twin = cls(model.x_dim, model.z_dim, model.hidden, model.activation, model.beta, dtype)
        load_mlp(twin.encoder, model.encoder, model.params)
        load_mlp(twin.decoder, model.decoder, model.params)
        return twin

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"loss", "recon", "kl"}: 0-d tensors, the loss with its graph."""
        batch, z_dim = x.shape[0], self.z_dim
        h = self.encoder(x)
        mu, logvar = h[:, :z_dim], h[:, z_dim:]
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = self.decoder(z)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / batch
        kl = -0.5 * torch.sum(1 + logvar - mu**2 - torch.exp(logvar)) / batch
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl}


def _sequential(sizes: Sequence[int], activation: str, dtype: torch.dtype) -> nn.Sequential:
    modules: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        modules.append(nn.Linear(int(sizes[i]), int(sizes[i + 1]), dtype=dtype))
        if i < len(sizes) - 2:
            modules.append(ACTIVATIONS[activation]())
    return nn.Sequential(*modules)


def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """argmin_j ||z_m - e_j||^2 for each row of z (M, D), codebook (K, D): (M,) integers.

    The same expansion ||z||^2 + ||e||^2 - 2 z.e as minivae.models.vqvae.nearest_code, so ties
    break alike; no gradient (argmin has none).
    """
    z, codebook = z.detach(), codebook.detach()
    distances = (z**2).sum(1, keepdim=True) + (codebook**2).sum(1)[None, :] - 2.0 * z @ codebook.T
    return distances.argmin(dim=1)


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """z_e + sg[z_q - z_e]: the value of z_q, the gradient of z_e (the straight-through copy)."""
    return z_e + (z_q - z_e).detach()


def vector_quantize(
    z_e: torch.Tensor,
    codebook: torch.Tensor,
    straight_through: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = straight_through,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z_st, codebook term, commitment term) for encoder outputs z_e (B, P, D).

        z_q = codebook[nearest code of each position],   z_st = straight_through(z_e, z_q)
        codebook   = (1/B) sum_{b,p,d} (sg[z_e] - z_q)^2     (moves the codes)
        commitment = (1/B) sum_{b,p,d} (z_e - sg[z_q])^2     (moves the encoder)
    """
    batch, positions, code_dim = z_e.shape
    flat = z_e.reshape(batch * positions, code_dim)
    z_q = codebook[nearest_code(flat, codebook)]
    z_st = straight_through(flat, z_q).reshape(batch, positions, code_dim)
    codebook_term = ((flat.detach() - z_q) ** 2).sum() / batch
    commitment = ((flat - z_q.detach()) ** 2).sum() / batch
    return z_st, codebook_term, commitment


Quantizer = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class TorchVQVAE(nn.Module):
    """``minivae.models.VQVAE(likelihood="bernoulli")`` in PyTorch, the stop-gradient as detach.

        z_e = encoder(x) as (B, P, D);  z_st, codebook, commitment = quantize(z_e, codebook)
        recon = (1/B) sum BCE-with-logits(decoder(z_st), x)
        loss = recon + codebook + beta * commitment
    """

    def __init__(self, model: Any, dtype: Any = torch.float64):
        super().__init__()
        if model.likelihood.name != "bernoulli":
            raise ValueError("TorchVQVAE is Bernoulli; the model's likelihood is "
                             f"{model.likelihood.name}")
        if getattr(model, "ema_decay", None) is not None:
            raise ValueError("TorchVQVAE learns the codebook by its gradient: ema_decay=None")
        self.positions, self.code_dim, self.beta = model.positions, model.code_dim, model.beta
        self.encoder = mlp_twin(model.encoder, model.params, dtype)
        self.decoder = mlp_twin(model.decoder, model.params, dtype)
        host = np.array(model.params["codebook"])
        self.codebook = nn.Parameter(torch.from_numpy(host).to(_torch_dtype(dtype)))

    def forward(
        self, x: torch.Tensor, quantize: Quantizer | None = None
    ) -> dict[str, torch.Tensor]:
        """{"loss", "recon", "codebook", "commitment"}: 0-d tensors (``quantize`` defaults to
        :func:`vector_quantize`)."""
        batch = x.shape[0]
        z_e = self.encoder(x).reshape(batch, self.positions, self.code_dim)
        z_st, codebook_term, commitment = (quantize or vector_quantize)(z_e, self.codebook)
        logits = self.decoder(z_st.reshape(batch, -1))
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / batch
        return {
            "loss": recon + codebook_term + self.beta * commitment,
            "recon": recon,
            "codebook": codebook_term,
            "commitment": commitment,
        }


# ---------------------------------------------------------------------------------------------
# The backward graph
# ---------------------------------------------------------------------------------------------


def _roots(tensors: torch.Tensor | Iterable[torch.Tensor]) -> list[Any]:
    items = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)
    return [t.grad_fn for t in items if t.grad_fn is not None]


def autograd_nodes(tensors: torch.Tensor | Iterable[torch.Tensor]) -> list[Any]:
    """Every node of the backward graph behind ``tensors``, each once, nearest the output first
    (breadth first from each tensor's ``grad_fn`` along ``next_functions``)."""
    seen: set[int] = set()
    order: list[Any] = []
    queue = _roots(tensors)
    while queue:
        node = queue.pop(0)
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        queue.extend(n for n, _ in node.next_functions if n is not None)
    return order


def nodes_by_stage(stages: Sequence[tuple[str, Any]]) -> list[tuple[str, Counter]]:
    """Which backward nodes each forward step added: [(label, Counter of node names)].

    ``stages``: (label, tensor or tuple of tensors) in the order the forward pass made them.
    A step's nodes are those behind its tensors and behind no earlier step's (a parameter's
    ``AccumulateGrad`` belongs to the step that uses the parameter).
    """
    earlier: dict[int, Any] = {}  # id -> node, the nodes kept alive so no id is reused
    table = []
    for label, tensors in stages:
        items = (tensors,) if isinstance(tensors, torch.Tensor) else tuple(tensors)
        behind = autograd_nodes(items)
        table.append((label, Counter(type(n).__name__ for n in behind if id(n) not in earlier)))
        earlier.update((id(n), n) for n in behind)
    return table


def _short(node: Any, names: dict[int, str]) -> str:
    kind = type(node).__name__
    if kind == "AccumulateGrad":
        return names.get(id(node.variable), "parameter")
    short = kind.removesuffix("Backward0").removesuffix("Backward1")
    return {"BinaryCrossEntropyWithLogits": "BCEWithLogits"}.get(short, short)


def draw_backward_graph(
    stages: Sequence[tuple[str, Any]],
    parameter_names: dict[int, str] | None = None,
    ax: Any = None,
    colors: Sequence[Any] | None = None,
) -> Any:
    """Draw the backward graph behind the last stage's tensor, one column per step back from
    the loss, each node coloured by the forward step that made it (see :func:`nodes_by_stage`).

    ``parameter_names``: id(parameter) -> the name to print on its AccumulateGrad leaf.
    ``TBackward0`` (nn.Linear's weight.t(): minivae stores W already transposed) is drawn as
    part of the edge to its weight. Returns the axes.
    """
    import matplotlib.pyplot as plt

    names = parameter_names or {}
    stage_of: dict[int, int] = {}
    keep: dict[int, Any] = {}
    for index, (_, tensors) in enumerate(stages):
        items = (tensors,) if isinstance(tensors, torch.Tensor) else tuple(tensors)
        for node in autograd_nodes(items):
            stage_of.setdefault(id(node), index)
            keep[id(node)] = node

    def children(node: Any) -> list[Any]:
        out = []
        for child, _ in node.next_functions:
            if child is None:
                continue
            if type(child).__name__ == "TBackward0":  # skip the transpose, draw its weight
                out.extend(c for c, _ in child.next_functions if c is not None)
            else:
                out.append(child)
        return out

    last = stages[-1][1]
    roots = _roots(last if isinstance(last, torch.Tensor) else tuple(last))
    depth: dict[int, int] = {}
    order = [n for n in autograd_nodes([t for t in ([last] if isinstance(last, torch.Tensor)
                                                    else last)])
             if type(n).__name__ != "TBackward0"]
    for root in roots:
        depth[id(root)] = 0
    # longest distance from the loss: relax in breadth-first order until nothing changes
    changed = True
    while changed:
        changed = False
        for node in order:
            if id(node) not in depth:
                continue
            for child in children(node):
                if depth.get(id(child), -1) < depth[id(node)] + 1:
                    depth[id(child)] = depth[id(node)] + 1
                    changed = True
    columns: dict[int, list[Any]] = {}
    for node in order:
        columns.setdefault(depth[id(node)], []).append(node)
    position: dict[int, tuple[float, float]] = {}
    for d, nodes in columns.items():
        nodes.sort(key=lambda n: stage_of.get(id(n), 0))
        for i, node in enumerate(nodes):
            position[id(node)] = (d, (len(nodes) - 1) / 2 - i)
    if ax is None:
        _, ax = plt.subplots(figsize=(16, 6))
    palette = colors or plt.get_cmap("tab10").colors
    for node in order:
        x0, y0 = position[id(node)]
        for child in children(node):
            x1, y1 = position[id(child)]
            ax.plot([x0, x1], [y0, y1], color="0.7", lw=0.8, zorder=1)
    for node in order:
        x0, y0 = position[id(node)]
        color = palette[stage_of.get(id(node), 0) % len(palette)]
        ax.text(x0, y0, _short(node, names), ha="center", va="center", fontsize=7, zorder=3,
                bbox=dict(boxstyle="round,pad=0.25", fc=color, ec="0.3", lw=0.5, alpha=0.85))
    for index, (label, _) in enumerate(stages):
        ax.scatter([], [], color=palette[index % len(palette)], label=label, s=60, marker="s")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=min(len(stages), 4),
              fontsize=8, frameon=False)
    ax.set(xlim=(-0.7, max(columns) + 0.7), ylim=(min(p[1] for p in position.values()) - 0.8,
                                                  max(p[1] for p in position.values()) + 0.8))
    ax.axis("off")
    return ax


# ---------------------------------------------------------------------------------------------
# Training as minivae.fit trains
# ---------------------------------------------------------------------------------------------


def evaluate_like_minivae(
    twin: TorchVAE, x: np.ndarray, seed: int = 0, batch_size: int = 1024
) -> dict[str, float]:
    """``minivae.evaluate``'s numbers for the twin: eps for each block of ``batch_size`` rows from
    ``numpy.random.default_rng(seed)``, every term averaged over the rows."""
    rng = np.random.default_rng(seed)
    dtype = twin.encoder[0].weight.dtype
    totals: dict[str, float] = {}
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            rows = x[start : start + batch_size]
            eps = rng.standard_normal((len(rows), twin.z_dim))
            terms = twin(torch.from_numpy(np.asarray(rows)).to(dtype),
                         torch.from_numpy(eps.astype(np.float32 if dtype == torch.float32
                                                     else np.float64)).to(dtype))
            for key, value in terms.items():
                totals[key] = totals.get(key, 0.0) + float(value) * len(rows)
    return {key: value / len(x) for key, value in totals.items()}


def fit_like_minivae(
    twin: TorchVAE,
    x_train: np.ndarray,
    x_val: np.ndarray | None = None,
    *,
    epochs: int,
    batch_size: int,
    lr: float = 1e-3,
    seed: int = 0,
    eps_seed: int = 1,
) -> dict[str, dict[str, list[float]]]:
    """Train ``twin`` with ``torch.optim.Adam`` on the draws ``minivae.fit`` would make.

    ``fit(model, x_train, x_val, epochs=, batch_size=, lr=, seed=seed)`` shuffles each epoch with
    ``numpy.random.default_rng(seed).permutation``, draws each minibatch's eps (batch, J) with
    the model's generator, ``default_rng(model_seed + 1)`` (pass ``eps_seed = model_seed + 1``),
    and after epoch e evaluates ``x_val`` with eps from ``default_rng(e)``. Returns
    ``{"train": {term: [per epoch]}, "val": {...}}``, each term the mean over the epoch's rows.
    """
    dtype = twin.encoder[0].weight.dtype
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    shuffle_rng = np.random.default_rng(seed)
    eps_rng = np.random.default_rng(eps_seed)
    optimizer = torch.optim.Adam(twin.parameters(), lr=lr)
    x_all = torch.from_numpy(np.asarray(x_train, dtype=np_dtype))
    history: dict[str, dict[str, list[float]]] = {"train": {}, "val": {}}
    n = len(x_all)
    for epoch in range(epochs):
        order = torch.from_numpy(shuffle_rng.permutation(n))
        sums: dict[str, float] = {}
        for start in range(0, n, batch_size):
            xb = x_all[order[start : start + batch_size]]
            eps = torch.from_numpy(eps_rng.standard_normal((len(xb), twin.z_dim)).astype(np_dtype))
            terms = twin(xb, eps)
            optimizer.zero_grad()
            terms["loss"].backward()
            optimizer.step()
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value.item() * len(xb)
        for key, value in sums.items():
            history["train"].setdefault(key, []).append(value / n)
        if x_val is not None:
            val = evaluate_like_minivae(twin, np.asarray(x_val, np_dtype), epoch)
            for key, value in val.items():
                history["val"].setdefault(key, []).append(value)
    return history


# ---------------------------------------------------------------------------------------------
# More than one process
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback_env(threads: int = 1) -> dict[str, str]:
    """The environment for processes that talk over 127.0.0.1 only, one BLAS thread each."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's transport on the loopback interface only
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    return env


def torchrun(
    module: str, args: Sequence[str] = (), nproc: int = 2, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc_per_node=nproc -m module args`` on this machine.

    One node, the rendezvous on 127.0.0.1 at a free port, gloo on the loopback interface, one
    thread per process. Raises RuntimeError with the processes' output when it fails.
    """
    command = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes=1", f"--nproc_per_node={int(nproc)}",
        "--master_addr=127.0.0.1", f"--master_port={free_port()}",
        "-m", module, *args,
    ]
    result = subprocess.run(command, env=loopback_env(), capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[2:])} exited with status {result.returncode}:\n"
            f"{(result.stdout + result.stderr)[-4000:]}"
        )
    return result


class WorldError(RuntimeError):
    """A process of :func:`run_world` failed, or the processes did not finish in time."""


def _world_child(
    fn: Callable[..., Any], rank: int, world_size: int, store_path: str, args: tuple,
    timeout: float, conn: Any,
) -> None:
    import torch.distributed as dist

    captured = io.StringIO()
    try:
        torch.set_num_threads(1)  # two processes share two cores
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
        store = dist.FileStore(store_path, world_size)
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=timeout))
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            result = fn(rank, world_size, *args)
        conn.send(("ok", result, captured.getvalue()))
    except BaseException as err:  # noqa: BLE001 - everything goes back to the parent
        conn.send(("error", (type(err).__name__, str(err), traceback.format_exc()),
                   captured.getvalue()))
    finally:
        with contextlib.suppress(Exception):
            dist.destroy_process_group()
        conn.close()


def run_world(
    fn: Callable[..., Any], world_size: int = 2, args: tuple = (), timeout: float = 60
) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` processes joined in one ``gloo``
    process group (``torch.distributed`` is initialised in each); return their results by rank.

    The processes are forked from this one, so ``fn`` may be any function, also one written in
    a notebook, and sees what this process has (fork: Linux and macOS). They meet through a file
    store in a temporary folder and talk over the loopback interface. A process that raises
    makes :class:`WorldError` (or, for an exception ``fn`` raised, its type when it is
    NotImplementedError or an AssertionError subclass) with its message; one that does not
    finish in ``timeout`` seconds is stopped.
    """
    if sys.platform.startswith("win"):  # pragma: no cover - the course runs on Linux and macOS
        raise WorldError("run_world forks processes, which Windows cannot")
    ctx = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="minivae-world-") as folder:
        store_path = os.path.join(folder, "store")
        pipes = [ctx.Pipe(duplex=False) for _ in range(world_size)]
        processes = [
            ctx.Process(target=_world_child,
                        args=(fn, rank, world_size, store_path, args, timeout, pipes[rank][1]),
                        daemon=True)
            for rank in range(world_size)
        ]
        for p in processes:
            p.start()
        for _, send_end in pipes:
            send_end.close()  # the parent keeps only the reading ends
        deadline = time.monotonic() + timeout + 10
        answers: list[Any] = [None] * world_size
        try:
            for rank, (receive, _) in enumerate(pipes):
                left = max(0.0, deadline - time.monotonic())
                if not receive.poll(left):
                    raise WorldError(
                        f"process {rank} of {world_size} did not finish in {timeout:.0f} s: a "
                        "collective (all_reduce, broadcast ...) waits until every process has "
                        "called it — do all processes make the same calls, in the same order?"
                    )
                try:
                    answers[rank] = receive.recv()
                except EOFError:
                    answers[rank] = ("error", ("WorldError", "the process ended without an answer "
                                               "(it crashed or was killed)", ""), "")
        finally:
            for p in processes:
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
                    p.join()
    errors = [(rank, a[1]) for rank, a in enumerate(answers) if a[0] == "error"]
    if errors:
        rank, (kind, message, _) = _first_error(errors)
        if kind == "NotImplementedError":
            raise NotImplementedError(message)
        if kind in ("ExerciseError", "AssertionError"):
            from .feedback import ExerciseError

            raise ExerciseError(f"{message} (in process {rank} of {world_size})")
        raise WorldError(f"process {rank} of {world_size} raised {kind}: {message}")
    return [a[1] for a in answers]


def _first_error(errors: list[tuple[int, tuple[str, str, str]]]) -> tuple[int, tuple]:
    """The error to report: the learner's own (an exercise error, a function not written)
    before one that only follows from it in another process (a peer that went away)."""
    for rank, error in errors:
        if error[0] in ("NotImplementedError", "ExerciseError", "AssertionError"):
            return rank, error
    return errors[0]
