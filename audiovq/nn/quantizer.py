"""Vector quantizer (van den Oord et al. 2017, section 3): a K × D codebook, nearest-codeword
assignment, straight-through gradients, and the codebook/commitment losses — or an EMA
codebook (appendix A.1) instead of the codebook loss.

Beyond the paper, what makes codebooks train well in practice:
- warm-up then k-means initialisation on a reservoir of recent encoder outputs (at
  initialisation encoder outputs are near-identical, so codes seeded then collapse);
- dead-code restart: codes unused over a window of steps are re-seeded from recent
  encoder outputs (plus a little noise) and their EMA state is reset with them;
- statistics every step: perplexity, windowed codebook usage, entropy in bits;
- under DistributedDataParallel every statistic that changes the codebook is summed over
  ranks and every random re-seed is decided on rank 0 and broadcast, so all ranks hold the
  same codebook after every step.

The same module serves 1-D (audio, (B, D, T)) and 2-D (images, (B, D, H, W)) inputs.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class VQResult(NamedTuple):
    quantized: torch.Tensor    # (B, D, *S) straight-through: forward = codewords, backward = identity
    indices: torch.Tensor      # (B, *S) int64
    loss: torch.Tensor         # codebook term + beta * commitment (codebook term is 0 with EMA)
    commitment: torch.Tensor   # ‖z_e − sg[e]‖², mean over elements
    codebook_loss: torch.Tensor  # ‖sg[z_e] − e‖², mean over elements
    perplexity: torch.Tensor   # exp(entropy) of this batch's code distribution (all ranks)
    usage: torch.Tensor        # fraction of codes used at least once over the last `window` steps
    entropy_bits: torch.Tensor  # entropy of this batch's code distribution in bits


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    if _distributed():
        dist.all_reduce(t)
    return t


def _broadcast(t: torch.Tensor) -> torch.Tensor:
    if _distributed():
        dist.broadcast(t, 0)
    return t


def nearest_codewords(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codeword by squared L2 for each row of z.

    z: (N, D), codebook: (K, D) → (N,). ‖z−e‖² = ‖z‖² − 2 z·e + ‖e‖² via one matmul, so the
    N × K × D difference tensor is never formed; ‖z‖² is constant per row and dropped.
    """
    scores = torch.addmm((codebook * codebook).sum(1), z, codebook.t(), alpha=-2.0)  # (N, K)
    return scores.argmin(1)


def kmeans(x: torch.Tensor, k: int, iters: int = 10, generator: torch.Generator | None = None) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding. x: (N, D) → centroids (k, D).

    With fewer distinct points than k, the extra centroids are jittered copies of data points.
    """
    n = x.shape[0]
    x = x.float()
    first = torch.randint(n, (1,), generator=generator, device="cpu").item()
    centroids = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        p = d2.clamp_min(0).cpu()
        idx = (torch.multinomial(p / p.sum(), 1, generator=generator).item() if p.sum() > 0
               else torch.randint(n, (1,), generator=generator).item())
        centroids.append(x[idx])
        d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    c = torch.stack(centroids)
    for _ in range(iters):
        assign = nearest_codewords(x, c)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        filled = counts > 0
        c[filled] = sums[filled] / counts[filled, None]
    if n < k or (c.unique(dim=0).shape[0] < k):
        scale = x.std(0, keepdim=True).clamp_min(1e-3) * 0.01
        c = c + scale * torch.randn(c.shape, generator=generator, device="cpu").to(c.device)
    return c


class VectorQuantizer(nn.Module):
    """Quantize z_e (B, D, *S) to its nearest codeword in a K × D codebook.

    Args:
        num_codes: K. dim: D. beta: commitment weight (paper: 0.25).
        ema: update the codebook by exponential moving averages (decay, Laplace smoothing
            `eps`, bias-corrected) instead of the codebook loss.
        warmup_steps: steps during which z_e passes through unquantized (the autoencoder
            learns diverse encodings); the codebook is then k-means-initialised from the
            reservoir. 0 = initialise by k-means on the first training batch.
        kmeans_iters: Lloyd iterations for the initialisation (0 = keep the random init).
        restart_after: a code unused for this many consecutive training steps is re-seeded
            from the reservoir (0 disables restarts).
        window: steps over which `usage` is measured.
        reservoir: how many recent encoder vectors are kept for initialisation and restarts.
    """

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25, ema: bool = False,
                 decay: float = 0.99, eps: float = 1e-5, warmup_steps: int = 0,
                 kmeans_iters: int = 10, restart_after: int = 20, window: int = 50,
                 reservoir: int = 8192):
        super().__init__()
        self.num_codes, self.dim, self.beta = num_codes, dim, beta
        self.ema, self.decay, self.eps = ema, decay, eps
        self.warmup_steps, self.kmeans_iters = warmup_steps, kmeans_iters
        self.restart_after, self.window = restart_after, window
        init = torch.randn(num_codes, dim) / math.sqrt(dim)
        if ema:
            self.register_buffer("codebook", init)
        else:
            self.codebook = nn.Parameter(init)
        # EMA accumulators (raw, before bias correction) and the number of EMA updates.
        self.register_buffer("ema_count", torch.zeros(num_codes))
        self.register_buffer("ema_sum", torch.zeros(num_codes, dim))
        self.register_buffer("ema_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("initialized", torch.tensor(kmeans_iters == 0))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # training steps seen
        self.register_buffer("idle", torch.zeros(num_codes, dtype=torch.long))  # steps since last use
        self.register_buffer("recent_use", torch.zeros(window, num_codes, dtype=torch.bool))
        self.register_buffer("pool", torch.zeros(reservoir, dim))
        self.register_buffer("pool_size", torch.zeros((), dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Exported checkpoints drop the reservoir (training state, not model): start it empty.
        pool = state_dict.get(prefix + "pool")
        if pool is not None and pool.numel() == 0:
            state_dict[prefix + "pool"] = torch.zeros_like(self.pool)
            state_dict[prefix + "pool_size"] = torch.zeros_like(self.pool_size)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ forward
    def forward(self, z: torch.Tensor) -> VQResult:
        """z: (B, D, *S) → VQResult with quantized (B, D, *S) and indices (B, *S)."""
        flat = z.movedim(1, -1).reshape(-1, self.dim)  # (N, D)
        training = self.training and torch.is_grad_enabled()
        if training:
            self._remember(flat.detach().float())
            if not bool(self.initialized) and int(self.steps) >= self.warmup_steps:
                self._initialise()
        warming = training and not bool(self.initialized)

        with torch.no_grad():
            indices = nearest_codewords(flat.detach().float(), self.codebook.float())
        codewords = self.codebook[indices].to(z.dtype)  # (N, D)
        stats = self._statistics(indices, training)

        commitment = F.mse_loss(flat, codewords.detach())
        codebook_loss = (F.mse_loss(codewords, flat.detach()) if not self.ema
                         else torch.zeros((), device=z.device))
        if warming:  # the autoencoder trains without a bottleneck until k-means initialisation
            quantized_flat = flat
            loss = 0.0 * codebook_loss  # keeps the codebook in the graph for DDP
        else:
            quantized_flat = flat + (codewords - flat).detach()  # straight-through estimator
            loss = codebook_loss + self.beta * commitment
            if training and self.ema:
                self._ema_update(flat.detach().float(), indices)
        if training:
            self._restart_dead_codes(stats.counts)
            self.steps += 1

        shape = z.movedim(1, -1).shape
        quantized = quantized_flat.reshape(shape).movedim(-1, 1)
        return VQResult(quantized, indices.reshape(shape[:-1]), loss, commitment.detach(),
                        codebook_loss.detach(), stats.perplexity, stats.usage, stats.entropy_bits)

    @torch.no_grad()
    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codewords for indices (B, *S) → (B, D, *S)."""
        return self.codebook[indices].movedim(-1, 1)

    # ------------------------------------------------------------- statistics
    class _Stats(NamedTuple):
        counts: torch.Tensor
        perplexity: torch.Tensor
        usage: torch.Tensor
        entropy_bits: torch.Tensor

    @torch.no_grad()
    def _statistics(self, indices: torch.Tensor, training: bool) -> "_Stats":
        counts = torch.bincount(indices, minlength=self.num_codes).float()
        if training:
            counts = _all_reduce(counts)
        p = counts / counts.sum().clamp_min(1)
        entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
        if training:
            slot = int(self.steps) % self.window
            self.recent_use[slot] = counts > 0
            filled = min(int(self.steps) + 1, self.window)
            usage = self.recent_use[:filled].any(0).float().mean()
        else:
            usage = (counts > 0).float().mean()
        return self._Stats(counts, entropy.exp(), usage, entropy / math.log(2))

    # ------------------------------------------------------------ maintenance
    @torch.no_grad()
    def _remember(self, flat: torch.Tensor) -> None:
        """Keep the most recent encoder vectors (a FIFO of `reservoir` rows) for seeding."""
        size = self.pool.shape[0]
        take = flat[torch.randperm(flat.shape[0], device=flat.device)[:size]]
        n = take.shape[0]
        self.pool.copy_(torch.cat([take, self.pool[: size - n]]) if n < size else take)
        self.pool_size.fill_(min(size, int(self.pool_size) + n))

    @torch.no_grad()
    def _initialise(self) -> None:
        """k-means on the reservoir, rank 0's result broadcast to every rank."""
        data = self.pool[: int(self.pool_size)]
        if _distributed():  # initialise from every rank's data, not just rank 0's
            parts = [torch.empty_like(data) for _ in range(dist.get_world_size())]
            dist.all_gather(parts, data.contiguous())
            data = torch.cat(parts)
        if self.kmeans_iters > 0 and data.shape[0] > 0:
            self.codebook.data.copy_(kmeans(data, self.num_codes, self.kmeans_iters).to(self.codebook))
        _broadcast(self.codebook.data)
        # EMA starts afresh: the first update sets every used code to the mean of its vectors.
        self.ema_count.zero_()
        self.ema_sum.zero_()
        self.ema_steps.zero_()
        self.idle.zero_()
        self.initialized.fill_(True)

    def _reset_ema(self, which: torch.Tensor) -> None:
        # State whose bias-corrected average is exactly the current codeword with count 1.
        correction = 1.0 - self.decay ** max(int(self.ema_steps), 1)
        self.ema_count[which] = correction
        self.ema_sum[which] = self.codebook.data[which].float() * correction

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        counts = torch.bincount(indices, minlength=self.num_codes).float()
        sums = torch.zeros(self.num_codes, self.dim, device=flat.device).index_add_(0, indices, flat)
        counts, sums = _all_reduce(counts), _all_reduce(sums)
        d = self.decay
        self.ema_count.mul_(d).add_(counts, alpha=1 - d)
        self.ema_sum.mul_(d).add_(sums, alpha=1 - d)
        self.ema_steps += 1
        correction = 1.0 - d ** int(self.ema_steps)
        n_hat = self.ema_count / correction
        m_hat = self.ema_sum / correction
        total = n_hat.sum()
        smoothed = (n_hat + self.eps) / (total + self.num_codes * self.eps) * total  # Laplace
        alive = n_hat > 0  # a code never assigned keeps its vector until restarted
        self.codebook.data[alive] = (m_hat[alive] / smoothed[alive, None]).to(self.codebook.dtype)

    @torch.no_grad()
    def _restart_dead_codes(self, counts: torch.Tensor) -> None:
        """Re-seed codes unused for `restart_after` steps from the reservoir (rank 0 decides)."""
        self.idle.add_(1).masked_fill_(counts > 0, 0)
        if not self.restart_after or not bool(self.initialized) or int(self.pool_size) == 0:
            return
        dead = self.idle >= self.restart_after
        _broadcast(dead)  # idle counters agree already (counts are all-reduced); be explicit
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        pool = self.pool[: int(self.pool_size)]
        pick = torch.randint(pool.shape[0], (n_dead,), device=pool.device)
        noise = pool.std(0, keepdim=True) * 0.01 * torch.randn(n_dead, self.dim, device=pool.device)
        fresh = (pool[pick] + noise).to(self.codebook.dtype)
        fresh = _broadcast(fresh.contiguous())
        self.codebook.data[dead] = fresh
        self._reset_ema(dead)
        self.idle[dead] = 0
