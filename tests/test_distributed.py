"""Two processes under torchrun (gloo, CPU) keep identical codebooks on both ranks, and match
a one-process run of the same global batch."""
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.slow


def run(tmp, nproc, *overrides, steps=6):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "tests/ddp_worker.py", str(tmp), str(steps), *overrides]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    return [torch.load(tmp / f"rank{r}.pt") for r in range(nproc)]


def test_two_ranks_match_each_other_and_a_single_process(tmp_path):
    plain = ["model.quantizer.kmeans_iters=0", "model.quantizer.restart_after=0"]
    (tmp_path / "one").mkdir(), (tmp_path / "two").mkdir()
    one = run(tmp_path / "one", 1, *plain)[0]
    r0, r1 = run(tmp_path / "two", 2, *plain)
    assert torch.equal(r0["quantizer.codebook"], r1["quantizer.codebook"])
    for k, v in one.items():
        if v.is_floating_point() and not k.startswith("quantizer.pool"):  # the reservoir is per rank
            assert torch.allclose(r0[k], v, atol=2e-4, rtol=1e-3), k
    assert not torch.equal(one["quantizer.codebook"], torch.zeros_like(one["quantizer.codebook"]))


def test_kmeans_init_and_restarts_keep_ranks_identical(tmp_path):
    r0, r1 = run(tmp_path, 2, "model.quantizer.warmup_steps=2", "model.quantizer.restart_after=2",
                 "model.quantizer.ema=true", steps=8)
    assert int(r0["quantizer.initialized"]) == 1
    for k in ("quantizer.codebook", "quantizer.ema_count", "quantizer.ema_sum", "quantizer.idle"):
        assert torch.equal(r0[k], r1[k]), k
    assert torch.equal(r0["decoder.network.embed.weight"], r1["decoder.network.embed.weight"])
