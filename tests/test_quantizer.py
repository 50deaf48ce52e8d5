"""The vector quantizer against brute force and hand-worked numbers."""
import math

import pytest
import torch

from audiovq.nn.quantizer import VectorQuantizer, kmeans, nearest_codewords


def test_nearest_codeword_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    z, book = torch.randn(500, 16, generator=g), torch.randn(64, 16, generator=g)
    brute = ((z[:, None, :] - book[None]) ** 2).sum(-1).argmin(1)
    assert torch.equal(nearest_codewords(z, book), brute)


def test_quantizer_output_is_the_nearest_codeword_in_1d_and_2d():
    torch.manual_seed(0)
    vq = VectorQuantizer(32, 8, kmeans_iters=0).eval()
    for shape in [(2, 8, 10), (2, 8, 3, 5)]:
        z = torch.randn(shape)
        out = vq(z)
        flat = z.movedim(1, -1).reshape(-1, 8)
        brute = torch.cdist(flat, vq.codebook.detach()).argmin(1)
        assert out.indices.shape == (shape[0],) + shape[2:]
        assert torch.equal(out.indices.flatten(), brute)
        assert torch.allclose(out.quantized.movedim(1, -1).reshape(-1, 8), vq.codebook[brute])


def test_gradients_straight_through_plus_commitment_and_codebook_term_only_to_codebook():
    torch.manual_seed(0)
    beta = 0.25
    vq = VectorQuantizer(4, 3, beta=beta, kmeans_iters=0, restart_after=0)
    z = torch.randn(2, 3, 5, requires_grad=True)
    w = torch.randn(2, 3, 5)  # an arbitrary downstream loss: sum(w * quantized)
    out = vq(z)
    ((out.quantized * w).sum() + out.loss).backward()
    e = vq.codebook.detach()[out.indices].movedim(-1, 1)  # (2, 3, 5) chosen codewords
    n = z.numel()
    # encoder: downstream gradient copied straight through, plus beta * d‖z − sg[e]‖²/dz
    assert torch.allclose(z.grad, w + beta * 2 * (z.detach() - e) / n, atol=1e-6)
    # codebook: only d‖sg[z] − e‖²/de, summed over the vectors assigned to each code
    expected = torch.zeros(4, 3)
    flat_z = z.detach().movedim(1, -1).reshape(-1, 3)
    for i, k in enumerate(out.indices.flatten().tolist()):
        expected[k] += 2 * (vq.codebook.detach()[k] - flat_z[i]) / n
    assert torch.allclose(vq.codebook.grad, expected, atol=1e-6)


def test_ema_codebook_gets_no_gradient_and_matches_hand_computed_update():
    decay, eps = 0.5, 0.1
    vq = VectorQuantizer(3, 2, ema=True, decay=decay, eps=eps, kmeans_iters=0, restart_after=0)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, 5.0]]))
    # four vectors: three near code 0, one near code 1; code 2 unused
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [9.0, 11.0]]).t().unsqueeze(0)  # (1, 2, 4)
    out = vq(z)
    assert out.indices.tolist() == [[0, 0, 0, 1]]
    # Step 1 (bias-corrected): n̂ = counts = (3, 1, 0), m̂ = sums = ((2,2), (9,11), 0).
    # Laplace: N = (n̂ + eps) / (4 + 3 eps) * 4 = (3.1, 1.1, 0.1) * 4 / 4.3
    n0, n1 = 3.1 * 4 / 4.3, 1.1 * 4 / 4.3
    expected = torch.tensor([[2 / n0, 2 / n0], [9 / n1, 11 / n1], [-10.0, 5.0]])  # unused code kept
    assert torch.allclose(vq.codebook, expected, atol=1e-5)
    # Step 2: the same data again. raw count_k = d * (1-d) c + (1-d) c; correction 1 − d² = 0.75
    vq(z)
    c = torch.tensor([3.0, 1.0, 0.0])
    n_hat = (decay * (1 - decay) * c + (1 - decay) * c) / (1 - decay ** 2)   # = c
    sums = torch.tensor([[2.0, 2.0], [9.0, 11.0], [0.0, 0.0]])
    m_hat = (decay * (1 - decay) * sums + (1 - decay) * sums) / (1 - decay ** 2)
    smoothed = (n_hat + eps) / (n_hat.sum() + 3 * eps) * n_hat.sum()
    assert torch.allclose(vq.codebook[:2], m_hat[:2] / smoothed[:2, None], atol=1e-5)
    assert not isinstance(vq.codebook, torch.nn.Parameter)


def test_dead_codes_restart_from_recent_encoder_outputs_and_reset_ema_state():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 2, ema=True, decay=0.9, kmeans_iters=0, restart_after=3, reservoir=64)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 100.0], [100.0, -100.0]]))
    z = (torch.randn(1, 2, 16) * 0.1 + torch.tensor([5.0, 5.0])[None, :, None])
    for _ in range(2):
        vq(z)
    assert torch.allclose(vq.codebook[1:], torch.tensor([[100.0, 100.0], [-100.0, 100.0], [100.0, -100.0]]))
    vq(z)  # third step without use: codes 1..3 are re-seeded from the data near (5, 5)
    assert (vq.codebook[1:] - torch.tensor([5.0, 5.0])).abs().max() < 1.0
    assert vq.idle[1:].eq(0).all()
    corr = 1 - 0.9 ** int(vq.ema_steps)
    assert torch.allclose(vq.ema_count[1:], torch.full((3,), corr))
    assert torch.allclose(vq.ema_sum[1:], vq.codebook[1:] * corr)


def test_kmeans_initialisation_uses_the_data():
    torch.manual_seed(0)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])
    data = (centres.repeat_interleave(50, 0) + 0.1 * torch.randn(200, 2))
    vq = VectorQuantizer(4, 2, ema=True, kmeans_iters=10, warmup_steps=0, restart_after=0)
    out = vq(data.t().unsqueeze(0))
    assert bool(vq.initialized)
    found = sorted(map(tuple, vq.codebook.round().tolist()))
    assert found == sorted(map(tuple, centres.tolist()))
    assert math.isclose(float(out.perplexity), 4.0, rel_tol=1e-4)
    assert math.isclose(float(out.entropy_bits), 2.0, rel_tol=1e-4)


def test_warmup_passes_encoder_output_through_then_initialises():
    vq = VectorQuantizer(8, 2, warmup_steps=2, kmeans_iters=5)
    z = torch.randn(1, 2, 40)
    assert torch.equal(vq(z).quantized, z)
    assert torch.equal(vq(z).quantized, z)
    out = vq(z)  # third step: initialised from the reservoir, now quantizing
    assert bool(vq.initialized)
    assert not torch.equal(out.quantized, z)


def test_usage_is_measured_over_a_window_of_steps():
    vq = VectorQuantizer(4, 1, kmeans_iters=0, restart_after=0, window=3)
    vq.codebook.data.copy_(torch.tensor([[0.0], [1.0], [2.0], [3.0]]))
    usage = [float(vq(torch.tensor([[[float(k)]]])).usage) for k in (0, 1, 2, 3)]
    assert usage == [0.25, 0.5, 0.75, 0.75]  # the window forgets code 0 at the fourth step


def test_kmeans_recovers_separated_clusters():
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(5, 3, generator=g) * 10
    x = centres.repeat_interleave(40, 0) + 0.05 * torch.randn(200, 3, generator=g)
    c = kmeans(x, 5, iters=20, generator=g)
    d = torch.cdist(centres, c).min(1).values
    assert d.max() < 0.1
