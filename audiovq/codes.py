"""A corpus as code sequences: every utterance encoded once by a trained VQ-VAE, cached on
disk under the checkpoint's content hash (a changed checkpoint is re-extracted, an unchanged
one never is).
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from . import audio
from .atomic import atomic_path
from .data.manifest import Manifest


class CodeCorpus(NamedTuple):
    ids: list[str]            # utterance ids
    speakers: list[str]       # speaker id of each utterance
    splits: list[str]         # "train" | "val" | "test"
    codes: list[np.ndarray]   # (F_i,) int64 code indices
    num_codes: int            # K
    code_rate: float          # codes per second


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


@torch.no_grad()
def encode_utterances(model, wavs: list[np.ndarray], batch_size: int = 8, progress: bool = True,
                      z_e: list | None = None) -> list[np.ndarray]:
    """Code indices (ceil(T_i / hop),) for each waveform (T_i,), batched by similar length.

    Given a list `z_e`, it is filled with each waveform's encoder output before quantization
    (ceil(T_i / hop), D) from the same pass (one encoder pass over the whole batch, whose codes
    equal `model.encode`'s windowed ones)."""
    order = np.argsort([w.size for w in wavs])
    codes: list[np.ndarray | None] = [None] * len(wavs)
    continuous: list[np.ndarray | None] = [None] * len(wavs)
    device = next(model.parameters()).device
    bar = tqdm(total=len(wavs), desc="encoding", unit="utt", disable=not progress)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        if len(idx) == 1:  # no padded copy (a long file is encoded alone)
            batch = wavs[idx[0]][None]
        else:
            batch = np.zeros((len(idx), max(wavs[i].size for i in idx)), np.float32)
            for row, i in enumerate(idx):
                batch[row, : wavs[i].size] = wavs[i]
        x = torch.from_numpy(batch).to(device)
        ind, z = model.encode_latents(x, latents=z_e is not None)
        ind = ind.cpu().numpy()
        if z is not None:
            z = z.transpose(1, 2).cpu().numpy()
        for row, i in enumerate(idx):
            codes[i] = ind[row, : -(-wavs[i].size // model.hop)]
            if z_e is not None:
                continuous[i] = z[row, : codes[i].size]
        bar.update(len(idx))
    bar.close()
    if z_e is not None:
        z_e[:] = continuous
    return codes


def extract_codes(model, checkpoint: str | os.PathLike, manifest: Manifest, cache_dir: str | os.PathLike,
                  progress: bool = True) -> CodeCorpus:
    """Codes of every utterance of `manifest`, from `<cache_dir>/codes-<checkpoint hash>.npz`
    when present, else encoded now and cached."""
    cache = pathlib.Path(cache_dir) / f"codes-{file_digest(checkpoint)}.npz"
    utts = manifest.utterances
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta["ids"] == [u.id for u in utts]:
                flat, offsets = z["codes"], z["offsets"]
                codes = [flat[offsets[i]:offsets[i + 1]].astype(np.int64) for i in range(len(utts))]
                return CodeCorpus(meta["ids"], meta["speakers"], meta["splits"], codes,
                                  meta["num_codes"], meta["code_rate"])
    if progress:
        print(f"extracting codes of {len(utts)} utterances with {checkpoint} → {cache}", flush=True)
    wavs = [audio.load(manifest.audio_path(u), model.sample_rate) for u in utts]
    # a prior models distinct codes, not their repeats over a strided model's frames
    codes = [c[::model.code_stride] for c in encode_utterances(model, wavs, progress=progress)]
    corpus = CodeCorpus([u.id for u in utts], [u.speaker for u in utts], [u.split for u in utts], codes,
                        model.quantizer.num_codes, model.bottleneck_rate)
    meta = {"ids": corpus.ids, "speakers": corpus.speakers, "splits": corpus.splits,
            "num_codes": corpus.num_codes, "code_rate": corpus.code_rate, "checkpoint": str(checkpoint)}
    offsets = np.concatenate([[0], np.cumsum([c.size for c in codes])])
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, codes=np.concatenate(codes).astype(np.int32), offsets=offsets, meta=json.dumps(meta))
    return corpus
