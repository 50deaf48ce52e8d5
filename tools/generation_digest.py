"""Digests of what generation produces, to check a refactor changes no number.

For the shipped model, the paper preset (random weights, seeded) and a small logistic-mixture
decoder: generated waveforms (batch 1 and 3, fast and PyTorch paths, float32/bf16/int8,
one-shot and streamed, temperatures 1, 0.7 and 0), teacher-forced logits, and codes sampled
from the shipped prior. Each output's SHA-256 (of its float32/int64 bytes) goes to a JSON file;
`--compare A.json B.json` lists the entries that differ.

    python tools/generation_digest.py --out before.json           # on the old code
    python tools/generation_digest.py --out after.json            # on the new code
    python tools/generation_digest.py --compare before.json after.json

Run each with NUMBA_CACHE_DIR pointing at an empty folder (fresh kernels) and again at the
same folder (kernels loaded from the cache): both must give the same digests. The digests are
of this machine's float arithmetic (the fast path is compiled for the host CPU): compare runs
made on one machine.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys

import numpy as np
import torch


def digest(x) -> str:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, (list, tuple)):
        return hashlib.sha256(b"".join(bytes.fromhex(digest(v)) for v in x)).hexdigest()
    a = np.ascontiguousarray(x)
    a = a.astype(np.float32) if a.dtype.kind == "f" else a.astype(np.int64)
    return hashlib.sha256(a.tobytes()).hexdigest()


def paper_model():
    from audiovq.config import load_config
    from audiovq.nn.vqvae import AudioVQVAE
    cfg = load_config("vqvae", ["preset=paper"])
    torch.manual_seed(0)
    model = AudioVQVAE(cfg.model, 4, cfg.data.sample_rate).eval()
    _spread(model)
    return model


def mixture_model():
    from audiovq.config import load_config
    from audiovq.nn.vqvae import AudioVQVAE
    cfg = load_config("vqvae", ["preset=tiny", "model.decoder.output=logistic_mixture",
                                "model.decoder.preemphasis=0.85"])
    torch.manual_seed(1)
    model = AudioVQVAE(cfg.model, 3, cfg.data.sample_rate).eval()
    _spread(model)
    return model


def _spread(model) -> None:
    """Fresh init gives tiny logits; spread them like a trained model's."""
    net = model.decoder.network if hasattr(model.decoder, "network") else model.decoder
    with torch.no_grad():
        net.head[-1].weight.mul_(4.0)


def generation_digests(name: str, model, frames: int, out: dict) -> None:
    from audiovq.generate import generate, stream
    hop = model.hop
    g = torch.Generator().manual_seed(7)
    K = model.quantizer.num_codes
    speakers = _num_speakers(model)
    codes = torch.randint(0, K, (3, frames), generator=g)
    spk = torch.tensor([0, speakers - 1, 1 % speakers])
    lengths = [frames * hop, frames * hop - 37, frames * hop - hop - 5]
    cases = [("b1", codes[:1], spk[:1], lengths[:1], 1), ("b3", codes, spk, lengths, 2)]
    for tag, c, s, n, threads in cases:
        for fast, precision in [(True, "float32"), (True, "bf16"), (True, "int8"), (False, "float32")]:
            for temperature in (1.0, 0.7, 0.0):
                if temperature != 1.0 and precision != "float32":
                    continue
                key = f"{name}/{tag}/{'fast' if fast else 'torch'}/{precision}/T{temperature}"
                res = generate(model, c, s, n, temperature=temperature, seed=3, fast=fast, threads=threads,
                               precision=precision)
                out[key] = digest(res.audio)
                if temperature == 1.0:
                    blocks = list(stream(model, c, s, n, temperature=temperature, seed=3, fast=fast,
                                         threads=threads, precision=precision, block=hop * 5))
                    streamed = [np.concatenate([b.audio[i] for b in blocks]) for i in range(len(n))]
                    out[key + "/streamed"] = digest(streamed)
                    out[key + "/streamed_equals_one_shot"] = all(
                        np.array_equal(a, b) for a, b in zip(streamed, res.audio))
        # teacher-forced logits of the model's own conditioning
        T = min(n)
        inputs = torch.randint(0, 256, (len(n), T), generator=torch.Generator().manual_seed(5))
        for fast, precision in [(True, "float32"), (True, "bf16"), (True, "int8"), (False, "float32")]:
            key = f"{name}/{tag}/logits/{'fast' if fast else 'torch'}/{precision}"
            out[key] = digest(_teacher_forced(model, c, s, inputs, fast, precision, threads))


def _num_speakers(model) -> int:
    emb = model.decoder.speakers if hasattr(model.decoder, "speakers") else model.speakers
    return emb.num_embeddings


def _teacher_forced(model, codes, speaker, inputs, fast, precision, threads):
    from audiovq.generate import teacher_forced_logits
    T = inputs.shape[1]
    with torch.no_grad():
        if hasattr(model.decoder, "network"):  # after the decoder seam
            local, glob = model.decoder.conditioning(model.quantizer.lookup(codes), speaker)
            net = model.decoder.network
        else:
            local, glob = model.conditioning(codes, speaker)
            net = model.decoder
        return teacher_forced_logits(net, inputs, local[..., :T], glob, fast=fast, threads=threads,
                                     precision=precision)


def prior_digests(out: dict) -> None:
    from audiovq.prior import load_prior, sample_codes
    p = load_prior(None)
    for top_k in (0, 20):
        for temperature in (1.0, 0.8):
            codes = sample_codes(p.prior, 2, 60, 3, temperature, top_k, seed=4)
            out[f"prior/top{top_k}/T{temperature}"] = digest(codes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the digests here (JSON)")
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"), help="list the entries of two digest files that differ")
    ap.add_argument("--quick", action="store_true", help="shipped model only")
    a = ap.parse_args()
    if a.compare:
        x, y = (json.load(open(f)) for f in a.compare)
        keys = sorted(set(x) | set(y))
        differ = [k for k in keys if x.get(k) != y.get(k)]
        for k in differ:
            print(f"differs: {k}")
        print(f"{len(keys) - len(differ)} of {len(keys)} equal")
        sys.exit(1 if differ else 0)
    from audiovq.models import load_vqvae
    torch.set_num_threads(2)
    out: dict = {}
    generation_digests("shipped", load_vqvae(None).model, 40, out)
    if not a.quick:
        generation_digests("paper", paper_model(), 6, out)
        generation_digests("mixture", mixture_model(), 12, out)
        prior_digests(out)
    text = json.dumps(out, indent=1, sort_keys=True)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
