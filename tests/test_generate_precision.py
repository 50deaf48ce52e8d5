"""Reduced-precision weights of the fast path (FastPath precision="bf16" | "int8"): the
packing against hand-worked numbers, the panel kernel and the whole path against PyTorch
run with the same rounded weights, and the rounding's effect on logits and samples against
the float32 path, within tolerances derived from the rounding error.

Tolerances. int8 rounds each weight to the nearest multiple of s = max|row| / 127, an error
uniform on ±s/2 (rms s / √12); for Gaussian-like rows of ~100 inputs max|row| ≈ 3 σ_w, so a
mat-vec's error is ~0.5 % of its output's rms, and a logit passes through about three such
products in turn (conv → residual stream, skip, two head layers; errors add in quadrature):
~1 % of the logits' standard deviation. bfloat16 keeps 8 significant bits (relative error
≤ 2⁻⁸, rms ≈ 0.15 % per weight): ~0.3 %. The tests allow 2 % (int8) and 1 % (bf16) rms, and
five times that at the worst step; measured on the model below: int8 0.63 % rms / 3.2 % max,
bf16 0.26 % / 1.3 %.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from audiovq.errors import AudioVQError
from audiovq.generate import generate_wavenet, teacher_forced_logits
from audiovq.generate.fast import FastPath
from audiovq.generate.kernels import panel_product
from audiovq.nn.sampling import inverse_cdf
from audiovq.generate.weights import (PANEL, from_bfloat16, pack_matrix, pack_stack, quantize_int8,
                                      stack_arrays, to_bfloat16, unpack_matrix)
from audiovq.nn.wavenet import WaveNet
from numba import njit

TOLERANCE = {"int8": (0.02, 0.10), "bf16": (0.01, 0.05)}  # (rms, max) |Δ logits| / std(logits)
AGREE = {"int8": 0.97, "bf16": 0.985}  # same class from the same uniform, teacher-forced


def medium_wavenet(seed=0):
    """Big enough for quantisation error to look as in a real decoder (rows of 64–512 inputs),
    small enough to run in a second."""
    torch.manual_seed(seed)
    net = WaveNet(256, 256, [1, 2, 4, 8, 16, 32, 64, 128] * 2, residual_channels=32, gate_channels=64,
                  skip_channels=64, local_channels=6, global_channels=4).eval()
    with torch.no_grad():  # spread the logits like a trained model's
        net.head[-1].weight.mul_(4.0)
    return net


def conditioning(B, T, seed=2):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (B, T), generator=g), torch.randn(B, 6, T, generator=g),
            torch.randn(B, 4, generator=g))


# ---------------------------------------------------------------- packing

def test_int8_hand_worked():
    w = np.array([[1.0, -0.5, 0.25], [0.0, 0.0, 0.0], [-2.54, 0.01, 0.03]], np.float32)
    q, s = quantize_int8(w)
    # row 0: s = 1/127, −0.5·127 = −63.5 → −64 (ties to even), 0.25·127 = 31.75 → 32
    # row 1: all zero → scale 1; row 2: s = 0.02, 0.01/0.02 = 0.5 → 0, 0.03/0.02 = 1.5 → 2
    np.testing.assert_array_equal(q, [[127, -64, 32], [0, 0, 0], [-127, 0, 2]])
    np.testing.assert_allclose(s, [1 / 127, 1.0, 0.02], rtol=1e-6)
    assert np.all(np.abs(q * s[:, None] - w) <= s[:, None] / 2 + 1e-7)


def test_bfloat16_hand_worked():
    one = 0x3F800000
    bits = np.array([one, one + 0x8000, one + 0x18000, one + 0x8001, 0xC0490FDB], np.uint32)  # 1, ties, π
    b = to_bfloat16(bits.view(np.float32))
    # 1 + 2⁻⁸ ties to even 1.0; 1 + 3·2⁻⁸ ties to even 1 + 2⁻⁶; just above a tie rounds up; −π → −3.140625
    np.testing.assert_array_equal(b, [0x3F80, 0x3F80, 0x3F82, 0x3F81, 0xC049])
    assert from_bfloat16(b)[4] == np.float32(-3.140625)
    w = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    assert np.all(np.abs(from_bfloat16(to_bfloat16(w)) - w) <= np.abs(w) * 2.0 ** -8)


@pytest.mark.parametrize("p", ["int8", "bf16"])
def test_panels_round_trip(p):
    w = np.random.default_rng(1).standard_normal((2, 70, 5)).astype(np.float32)  # 70 rows: a partial panel
    data, scale = pack_matrix(w, p)
    assert scale.shape == (2, 2 * PANEL)
    back = unpack_matrix(data, scale, 70, 5)
    bound = np.abs(w).max(-1, keepdims=True) / 254 if p == "int8" else np.abs(w) * 2.0 ** -8
    assert back.shape == w.shape and np.all(np.abs(back - w) <= bound + 1e-7)
    if p == "bf16":  # element (o, i): panel o // PANEL, row i, lane o % PANEL
        assert data.shape == (2, 2, 5, PANEL)
        assert data[1, 65 // PANEL, 3, 65 % PANEL] == to_bfloat16(w)[1, 65, 3]
        assert np.all(data[:, 1, :, 70 - PANEL:] == 0)  # rows 70 … 127 pad the second panel
    else:  # inputs in pairs: panel o // PANEL, pair i // 2, lane o % PANEL, i % 2; column 5 pads
        assert data.shape == (2, 2, 3, PANEL, 2)
        assert data[1, 65 // PANEL, 3 // 2, 65 % PANEL, 3 % 2] == quantize_int8(w)[0][1, 65, 3]
        assert np.all(data[:, 1, :, 70 - PANEL:] == 0) and np.all(data[:, :, 2, :, 1] == 0)


@njit
def _call_panel(data, scale, x, out, xq):
    panel_product(data, scale, x, out, xq)


@pytest.mark.parametrize("p", ["int8", "bf16"])
@pytest.mark.parametrize("rows,inputs", [(70, 11), (64, 64), (128, 1280), (3, 1)])
def test_panel_kernel_is_the_rounded_matvec(p, rows, inputs):
    g = np.random.default_rng(rows + inputs)
    w, x = g.standard_normal((rows, inputs)).astype(np.float32), g.standard_normal(inputs).astype(np.float32)
    data, scale = pack_matrix(w, p)
    out = np.full(data.shape[0] * PANEL, 0.5, np.float32)
    _call_panel(data, scale, x, out, np.zeros(inputs + 1, np.int16))
    W = unpack_matrix(data, scale, rows, inputs).astype(np.float64)
    expect = 0.5 + W @ x
    bound = 4e-6 * math.sqrt(inputs) * np.abs(x).max() * np.abs(W).max()  # float32 sums
    if p == "int8":  # x rounded to a grid of max|x| / Q, Q = the largest overflow-free level
        Q = min(32767, (2 ** 31 - 1) // (127 * 2 * -(-inputs // 2)))
        bound += np.abs(W).sum(1) * np.abs(x).max() / (2 * Q)
    assert np.all(np.abs(out[:rows] - expect) <= bound + 1e-7)
    assert np.all(out[rows:] == 0.5)  # padding outputs add nothing


# ---------------------------------------------------------------- whole path

def rounded_copy(net: WaveNet, p: str) -> WaveNet:
    """The module with the weights the fast path reads at precision p (inverse of
    `weights._stack` for the rounded mat-vec weights)."""
    w = stack_arrays(net)
    panels = pack_stack(w, p)
    un = lambda name: torch.from_numpy(unpack_matrix(getattr(panels, name), getattr(panels, name + "_scale"),
                                                     *getattr(w, name).shape[-2:]))
    out = copy.deepcopy(net)
    L, G, KR = w.conv.shape
    R, H = w.embed.shape[1], G // 2
    conv, res, skip = un("conv"), un("res"), un("skip")
    with torch.no_grad():
        for l, layer in enumerate(out.layers):
            layer.conv.weight.copy_(conv[l].reshape(G, KR // R, R).permute(0, 2, 1))
            if layer.res is not None:
                layer.res.weight[:, :, 0] = res[l] / math.sqrt(0.5)
            layer.skip.weight[:, :, 0] = skip[:, l * H:(l + 1) * H]
        _, c1, _, c2 = out.head
        c1.weight[:, :, 0] = un("head1")
        c2.weight[:, :, 0] = un("head2")
    return out


def odd_wavenet():
    """Sizes that are no multiple of a panel, odd input counts (K·R = 21, H = 5, S = 9)."""
    torch.manual_seed(3)
    return WaveNet(256, 40, [1, 2, 4, 1, 2], residual_channels=7, gate_channels=10, skip_channels=9,
                   kernel_size=3, local_channels=6, global_channels=4).eval()


@pytest.mark.parametrize("p", ["int8", "bf16"])
@pytest.mark.parametrize("make", [medium_wavenet, odd_wavenet], ids=["medium", "odd-sizes"])
def test_fast_path_computes_with_the_rounded_weights(p, make):
    """The reduced-precision path is the forward of the model with rounded weights, up to
    float32 sums and, for int8, inputs rounded to ≥ 13 bits per mat-vec (≲ 1e-4 relative)."""
    net = make()
    inputs, loc, glo = conditioning(2, 300)
    with torch.no_grad():
        ref = rounded_copy(net, p)(inputs, loc, glo)
    got = teacher_forced_logits(net, inputs, loc, glo, precision=p)
    assert (got - ref).abs().max() < 1e-4 * ref.abs().max()


@pytest.mark.parametrize("p", ["int8", "bf16"])
def test_logits_within_rounding_tolerance(p):
    net = medium_wavenet()
    inputs, loc, glo = conditioning(4, 600)
    exact = teacher_forced_logits(net, inputs, loc, glo)
    got = teacher_forced_logits(net, inputs, loc, glo, precision=p)
    err, scale = got - exact, exact.std()
    rms, worst = TOLERANCE[p]
    assert err.pow(2).mean().sqrt() < rms * scale, err.pow(2).mean().sqrt() / scale
    assert err.abs().max() < worst * scale, err.abs().max() / scale


@pytest.mark.parametrize("p", ["int8", "bf16"])
def test_same_uniforms_same_class(p):
    """Sampling each step of a teacher-forced sequence from the same uniforms gives the same
    class in most steps: a step differs when u falls between a class boundary and where the
    rounding moved it, a shift of ~ the logits' error × p near the boundary against classes
    of width p. Measured: int8 98.0 %, bf16 99.3 %;
    required: 97 % and 98.5 %."""
    net = medium_wavenet()
    inputs, loc, glo = conditioning(4, 600)
    exact = teacher_forced_logits(net, inputs, loc, glo)
    got = teacher_forced_logits(net, inputs, loc, glo, precision=p)
    u = torch.rand(4 * 600, generator=torch.Generator().manual_seed(9))
    flat = lambda z: z.permute(0, 2, 1).reshape(-1, z.shape[1])
    a, b = inverse_cdf(flat(exact), u), inverse_cdf(flat(got), u)
    assert (a == b).float().mean() >= AGREE[p]


@pytest.mark.parametrize("p", ["int8", "bf16"])
def test_generated_statistics_match_float32(p):
    """Free-running generation: mean and spread of the sampled classes, per item over 24
    items (independent), agree with the float32 path's within sampling error (4 standard
    errors of the difference)."""
    net = medium_wavenet()
    B, T = 24, 400
    _, loc, glo = conditioning(B, T, seed=5)
    stats = {}
    for q, seed in (("float32", 100), (p, 1000)):  # independent draws
        v = np.stack(generate_wavenet(net, T, loc, glo, seed=seed, precision=q).values).astype(np.float64)
        stats[q] = (v.mean(1), v.std(1))
    for k in range(2):
        a, b = stats["float32"][k], stats[p][k]
        se = math.sqrt(a.var(ddof=1) / B + b.var(ddof=1) / B)
        assert abs(a.mean() - b.mean()) < 4 * se + 1e-9, (k, a.mean(), b.mean(), se)


def test_unknown_precision_is_an_error():
    with pytest.raises(AudioVQError, match="precision"):
        FastPath(medium_wavenet(), [10], None, 0, precision="fp8")
    with pytest.raises(AudioVQError, match="precision"):
        generate_wavenet(medium_wavenet(), 10, *conditioning(1, 10)[1:], precision="fp8")


def test_reduced_precision_is_refused_on_the_pytorch_path():
    with pytest.raises(AudioVQError, match="fast CPU path"):
        generate_wavenet(medium_wavenet(), 10, *conditioning(1, 10)[1:], fast=False, precision="int8")


def test_cli_offers_the_engines_precisions():
    from audiovq import cli
    from audiovq.generate.weights import PRECISIONS
    assert cli.PRECISIONS == PRECISIONS
