"""Planted mistakes for solutions/10_pytorch.ipynb: each must fail its own exercise's graded test
with the message that names it (and no other exercise's tests).

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new, expected)
tuples: ``old`` is an exact substring of that solution cell, ``new`` the learner's slip, and
``expected`` a substring (or regular expression) of the message the graded cell must give.
"""

RECON = 'recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / batch'
KL = "kl = -0.5 * torch.sum(1 + logvar - mu**2 - torch.exp(logvar)) / batch"
STEP = (
    "    optimizer.zero_grad()\n"
    "    loss, recon, kl = negative_elbo(model.encoder, model.decoder, x, eps)\n"
    "    loss.backward()\n"
    "    optimizer.step()\n"
)
FORWARD = "    loss, recon, kl = negative_elbo(model.encoder, model.decoder, x, eps)\n"
TERMS = (
    "codebook_term = ((flat.detach() - z_q) ** 2).sum() / batch\n"
    "    commitment_term = ((flat - z_q.detach()) ** 2).sum() / batch"
)
REDUCE = "dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)"

MISTAKES = {
    "negative_elbo": [
        (
            "reduction='mean' (the default) for the Bernoulli term",
            RECON,
            "recon = F.binary_cross_entropy_with_logits(logits, x)",
            "averages over every entry by default (reduction='mean')",
        ),
        (
            "reduction='mean' and divided by the batch again",
            RECON,
            "recon = F.binary_cross_entropy_with_logits(logits, x) / batch",
            "already averages over the batch AND the pixels",
        ),
        (
            "reduction='sum' without dividing by the batch",
            RECON,
            'recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")',
            "reduction='sum' sums over the batch too",
        ),
        (
            "sigmoid, then binary_cross_entropy",
            RECON,
            'recon = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum") / batch',
            "torch.sigmoid then F.binary_cross_entropy loses the large logits",
        ),
        (
            "exp(logvar) used as the std",
            "std = torch.exp(0.5 * logvar)",
            "std = torch.exp(logvar)",
            "exp(logvar) is the variance",
        ),
        (
            "mu and logvar swapped",
            "mu, logvar = h[:, :z_dim], h[:, z_dim:]",
            "logvar, mu = h[:, :z_dim], h[:, z_dim:]",
            "mu and logvar are swapped",
        ),
        ("the KL with a flipped sign", "kl = -0.5 *", "kl = 0.5 *", "your KL has the wrong sign"),
        (
            "torch.mean over the KL's entries",
            KL,
            "kl = -0.5 * torch.mean(1 + logvar - mu**2 - torch.exp(logvar))",
            "torch.mean over the (batch, latent) entries divides by B * J",
        ),
        (
            "the KL summed over the batch too",
            KL,
            "kl = -0.5 * torch.sum(1 + logvar - mu**2 - torch.exp(logvar))",
            "5 times too large — 5 is the batch size",
        ),
        (
            "logvar detached in the reparameterization",
            "std = torch.exp(0.5 * logvar)",
            "std = torch.exp(0.5 * logvar.detach())",
            "no gradient flows from the decoder to logvar",
        ),
        (
            "mu detached in the reparameterization",
            "z = mu + std * eps",
            "z = mu.detach() + std * eps",
            "no gradient flows from the decoder to mu",
        ),
        (
            "z detached before the decoder",
            "logits = decoder(z)",
            "logits = decoder(z.detach())",
            "no gradient reaches the encoder through z",
        ),
        (
            "mu and logvar detached in the KL",
            KL,
            "kl = -0.5 * torch.sum(1 + logvar.detach() - mu.detach()**2"
            " - torch.exp(logvar.detach())) / batch",
            "the KL sends no gradient to the encoder",
        ),
        (
            "new noise drawn inside",
            "z = mu + std * eps",
            "z = mu + std * torch.randn_like(mu)",
            "two calls with the same x and eps gave different losses",
        ),
        (
            "eps scaled in place",
            "z = mu + std * eps",
            "eps *= std\n    z = mu + eps",
            "changed its argument `eps` in place",
        ),
        (
            "the loss returned as a number (.item())",
            "return recon + kl, recon, kl",
            "return (recon + kl).item(), recon, kl",
            "loss is a plain number",
        ),
        (
            "the loss as recon - kl",
            "return recon + kl, recon, kl",
            "return recon - kl, recon, kl",
            "the negative ELBO is recon + kl",
        ),
        (
            "the KL left out of the loss",
            "return recon + kl, recon, kl",
            "return recon, recon, kl",
            "the loss is recon alone",
        ),
        (
            "the loss detached",
            "return recon + kl, recon, kl",
            "return (recon + kl).detach(), recon, kl",
            "loss has no graph",
        ),
    ],
    "train_step": [
        (
            "zero_grad forgotten",
            "    optimizer.zero_grad()\n",
            "",
            "PyTorch ACCUMULATES into .grad",
        ),
        (
            "zero_grad between backward and step",
            STEP,
            FORWARD + "    loss.backward()\n    optimizer.zero_grad()\n    optimizer.step()\n",
            "the weights did not move",
        ),
        (
            "step before backward",
            STEP,
            "    optimizer.zero_grad()\n" + FORWARD + "    optimizer.step()\n    loss.backward()\n",
            "is the step missing, before backward()",
        ),
        (
            "the step forgotten",
            "    optimizer.step()\n",
            "",
            "the weights did not move",
        ),
        (
            "two steps per call",
            "    optimizer.step()\n",
            "    optimizer.step()\n    optimizer.step()\n",
            "the weights moved by two Adam steps",
        ),
        (
            "backward called twice",
            "    loss.backward()\n",
            "    loss.backward()\n    loss.backward()\n",
            "one backward() per forward pass",
        ),
        (
            "the loss computed under torch.no_grad()",
            FORWARD,
            "    with torch.no_grad():\n    " + FORWARD,
            "no torch.no_grad() around the forward pass",
        ),
        (
            "the tensor returned instead of a float",
            "return loss.item()",
            "return loss",
            "train_step returned a tensor",
        ),
        (
            "the loss after the step returned",
            "return loss.item()",
            "return negative_elbo(model.encoder, model.decoder, x, eps)[0].item()",
            "this is the loss AFTER the step",
        ),
    ],
    "vector_quantize": [
        (
            "detach on the wrong side",
            "z_st = flat + (z_q - flat).detach()",
            "z_st = z_q + (flat - z_q).detach()",
            "the detach is on the wrong side",
        ),
        (
            "no detach in the straight-through line",
            "z_st = flat + (z_q - flat).detach()",
            "z_st = flat + (z_q - flat)",
            "the decoder's gradient goes to the codebook and none reaches the encoder",
        ),
        (
            "z_q passed on as it is",
            "z_st = flat + (z_q - flat).detach()",
            "z_st = z_q",
            "Copy the gradient straight through",
        ),
        (
            "z_q detached",
            "z_st = flat + (z_q - flat).detach()",
            "z_st = z_q.detach()",
            "reaches neither the encoder nor the codebook",
        ),
        (
            "argmax instead of argmin",
            "distances.argmin(dim=1)",
            "distances.argmax(dim=1)",
            "these are the FARTHEST codes",
        ),
        (
            "the largest dot product as the nearest code",
            "distances = torch.cdist(flat.detach(), codebook.detach())",
            "distances = -(flat.detach() @ codebook.detach().T)",
            "the largest dot product",
        ),
        (
            "F.mse_loss with its default reduction='mean'",
            "codebook_term = ((flat.detach() - z_q) ** 2).sum() / batch",
            "codebook_term = F.mse_loss(z_q, flat.detach())",
            "F.mse_loss (and torch.mean) average over every entry",
        ),
        (
            "the commitment term not divided by the batch",
            "commitment_term = ((flat - z_q.detach()) ** 2).sum() / batch",
            "commitment_term = ((flat - z_q.detach()) ** 2).sum()",
            "4 times too large: divide the sum by the batch size",
        ),
        (
            "the detaches of the two terms swapped",
            TERMS,
            "codebook_term = ((flat - z_q.detach()) ** 2).sum() / batch\n"
            "    commitment_term = ((flat.detach() - z_q) ** 2).sum() / batch",
            "the detaches of the two terms are swapped",
        ),
        (
            "no detach in either term",
            TERMS,
            "codebook_term = ((flat - z_q) ** 2).sum() / batch\n"
            "    commitment_term = ((flat - z_q) ** 2).sum() / batch",
            "both terms send gradient to both the encoder and the codebook",
        ),
        (
            "both sides detached in both terms",
            TERMS,
            "codebook_term = ((flat.detach() - z_q.detach()) ** 2).sum() / batch\n"
            "    commitment_term = ((flat.detach() - z_q.detach()) ** 2).sum() / batch",
            "the two terms send no gradient at all",
        ),
    ],
    "average_gradients": [
        (
            "summed, not averaged",
            "        p.grad /= world_size\n",
            "",
            "all_reduce SUMS the 2 processes' gradients",
        ),
        (
            "divided, never summed",
            f"        {REDUCE}\n",
            "",
            "never summed over the processes",
        ),
        (
            "a copy of the gradient reduced",
            REDUCE,
            "dist.all_reduce(p.grad.clone(), op=dist.ReduceOp.SUM)",
            "not p (the weights), a copy such as p.grad.clone()",
        ),
        (
            "the weights reduced instead of the gradients",
            REDUCE,
            "dist.all_reduce(p.data, op=dist.ReduceOp.SUM)",
            "never summed over the processes",
        ),
        (
            "ReduceOp.AVG and a division",
            "op=dist.ReduceOp.SUM",
            "op=dist.ReduceOp.AVG",
            "divided by the number of processes twice",
        ),
        (
            "the number of processes written in as 2",
            "world_size = dist.get_world_size()",
            "world_size = 2",
            "divided by 2, but there are 3 processes here",
        ),
        (
            "a return inside the loop",
            "        p.grad /= world_size\n",
            "        p.grad /= world_size\n        return\n",
            "only some gradients were averaged",
        ),
        (
            "only process 0 reduces",
            f"        {REDUCE}\n",
            f"        if dist.get_rank() == 0:\n            {REDUCE}\n",
            "Every process must call dist.all_reduce on the same tensors",
        ),
    ],
}
