"""Speaker conversion and the code file format: encode a source to codes, decode the codes
with another speaker's embedding (paper, section 4.3), keep the source's loudness.

A codes file is `NAME.npz` (arrays `codes` (F,) and `meta` JSON) or `NAME.npy` with a
`NAME.json` header beside it; the header records the code rate, K, sample rate, length and
the checkpoint, so `decode` can refuse codes from another model.
"""
from __future__ import annotations

import json
import os
import re
import pathlib
from typing import NamedTuple

import numpy as np
import torch

from . import audio
from .atomic import atomic_path, write_text
from .codes import encode_utterances
from .errors import AudioVQError
from .generate import generate
from .models import LoadedVQVAE

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg"}


class Converted(NamedTuple):
    source: pathlib.Path
    target: str
    output: pathlib.Path
    seconds: float


def expand_sources(paths: list[str]) -> list[pathlib.Path]:
    """Files as given, folders → their audio files (sorted)."""
    found: list[pathlib.Path] = []
    for p in map(pathlib.Path, paths):
        if p.is_dir():
            inside = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
            if not inside:
                raise AudioVQError(f"{p}: folder holds no .wav/.flac/.ogg files")
            found += inside
        else:
            found.append(p)
    return found


def convert(m: LoadedVQVAE, sources: list[pathlib.Path], targets: list[str], out: str | os.PathLike,
            temperature: float = 1.0, seed: int = 0, fast: bool = True, batch_size: int = 8,
            progress: bool = True) -> tuple[list[Converted], float]:
    """Convert every source to every target speaker. `out` is a folder (or, for one source and
    one target, a .wav path). Returns the conversions and the real-time factor."""
    model = m.model
    speaker_idx = [m.speaker_index(t) for t in targets]  # unknown speakers fail before any work
    wavs = [audio.load(s, model.sample_rate, require_speech=True) for s in sources]
    out = pathlib.Path(out)
    single = len(sources) * len(targets) == 1 and out.suffix.lower() in AUDIO_SUFFIXES
    codes = encode_utterances(model, wavs, progress=False)
    jobs = [(i, t, k) for i in range(len(sources)) for t, k in zip(targets, speaker_idx)]
    from tqdm import tqdm
    bar = tqdm(total=sum(wavs[i].size for i, _, _ in jobs) / model.sample_rate, unit="s audio",
               desc="converting", disable=not progress, bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s{postfix}")
    done, busy, produced = [], 0.0, 0
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start:start + batch_size]
        longest = max(codes[i].size for i, _, _ in chunk)
        ind = torch.zeros(len(chunk), longest, dtype=torch.long)
        for row, (i, _, _) in enumerate(chunk):
            ind[row, : codes[i].size] = torch.from_numpy(codes[i])
        res = generate(model, ind, torch.tensor([k for _, _, k in chunk]),
                       lengths=[wavs[i].size for i, _, _ in chunk], temperature=temperature,
                       seed=[seed + start + r for r in range(len(chunk))], fast=fast)
        busy += res.seconds
        for (i, target, _), y in zip(chunk, res.audio):
            y = match_loudness(y, wavs[i])
            path = out if single else out / f"{sources[i].stem}_to_{target}.wav"
            audio.save(path, y, model.sample_rate)
            done.append(Converted(sources[i], target, path, y.size / model.sample_rate))
            produced += y.size
        bar.set_postfix_str(f"RTF {busy * model.sample_rate / produced:.2f}")
        bar.update(sum(wavs[i].size for i, _, _ in chunk) / model.sample_rate)
    bar.close()
    return done, busy * model.sample_rate / max(produced, 1)


def utterance_id(path: pathlib.Path) -> str:
    """Corpus file name → utterance id (VCTK 0.92 adds the mic): p225_001_mic1.flac → p225_001."""
    return re.sub(r"_mic\d$", "", path.stem)


def match_loudness(y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Scale y to the RMS level of `reference` (peak-limited to ±1)."""
    gain = 10 ** ((audio.loudness_db(reference) - audio.loudness_db(y)) / 20)
    y = y * gain
    peak = float(np.abs(y).max()) if y.size else 0.0
    return (y / peak * 0.999 if peak > 1 else y).astype(np.float32)


def write_conversions(out_dir: pathlib.Path, items: list[Converted], checkpoint: pathlib.Path,
                      source_speakers: dict[str, str | None]) -> pathlib.Path:
    """`conversions.json`: what `audiovq evaluate` reads."""
    rows = [{"source": str(c.source), "target": c.target, "output": str(c.output),
             "source_speaker": source_speakers.get(str(c.source)),
             "source_utterance": utterance_id(c.source) if source_speakers.get(str(c.source)) else None}
            for c in items]
    path = out_dir / "conversions.json"
    write_text(path, json.dumps({"checkpoint": str(checkpoint), "items": rows}, indent=1) + "\n")
    return path


# --------------------------------------------------------------------- codes files
def save_codes(path: str | os.PathLike, codes: np.ndarray, meta: dict) -> list[pathlib.Path]:
    path = pathlib.Path(path)
    if path.suffix == ".npz":
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, codes=codes.astype(np.int64), meta=json.dumps(meta))
        return [path]
    if path.suffix != ".npy":
        raise AudioVQError(f"{path}: codes are written as .npy (with a .json header) or .npz")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, codes.astype(np.int64))
    header = path.with_suffix(".json")
    write_text(header, json.dumps(meta, indent=1) + "\n")
    return [path, header]


def load_codes(path: str | os.PathLike, num_codes: int) -> tuple[np.ndarray, dict]:
    """Codes (F,) and header; refuses indices outside [0, num_codes) and other models' K."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise AudioVQError(f"{path}: no such codes file")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                codes, meta = z["codes"], json.loads(str(z["meta"]))
        else:
            codes = np.load(path, allow_pickle=False)
            header = path.with_suffix(".json")
            meta = json.loads(header.read_text()) if header.is_file() else {}
    except (ValueError, OSError, KeyError, json.JSONDecodeError) as e:
        raise AudioVQError(f"{path}: not a codes file ({type(e).__name__}: {str(e)[:80]})") from None
    codes = np.asarray(codes)
    if codes.ndim != 1 or codes.size == 0 or not np.issubdtype(codes.dtype, np.integer):
        raise AudioVQError(f"{path}: expected a non-empty 1-D integer array of codes, got {codes.dtype} {codes.shape}")
    if "num_codes" in meta and meta["num_codes"] != num_codes:
        raise AudioVQError(f"{path}: codes of a model with K={meta['num_codes']}, this checkpoint has K={num_codes}")
    bad = (codes < 0) | (codes >= num_codes)
    if bad.any():
        raise AudioVQError(f"{path}: {int(bad.sum())} code indices outside 0…{num_codes - 1} "
                           f"(e.g. {int(codes[bad][0])})")
    return codes.astype(np.int64), meta
