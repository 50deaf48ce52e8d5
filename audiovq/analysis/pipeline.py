"""`audiovq analyze`: encode a prepared corpus with a trained VQ-VAE, label every code frame
with the phone at its centre (TextGrid `phones` tier), and score the codes and the baselines.

The prepared audio was silence-trimmed; its `trim_start` (manifest) shifts code-frame times
back onto the TextGrid timeline of the source file.
"""
from __future__ import annotations

import os
import pathlib
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from .. import audio
from ..codes import encode_utterances
from ..data.alignments import read_textgrid
from ..data.manifest import Manifest, Utterance
from ..errors import AudioVQError
from . import baselines, confidence, hear, labels, speakers
from .report import LEARNED, RANDOM, compare_methods, format_intervals, format_table, write_report


@dataclass
class Problems:
    """Utterances left out, by reason (reported, never fatal unless all are missing)."""
    missing: list[str] = field(default_factory=list)       # no TextGrid found
    no_phone_tier: list[str] = field(default_factory=list)
    too_short: list[str] = field(default_factory=list)     # TextGrid ends before the audio (beyond tolerance)
    unreadable: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.__dict__.items()}


@dataclass
class AnalysisResult:
    rows: dict                  # method → metrics (see report.evaluate_codes)
    table: str
    files: list[pathlib.Path]
    frames: int                 # labelled frames scored
    utterances: int
    problems: Problems
    frames_outside: int         # frames outside every interval (dropped)
    frames_silence: int
    heard: list[dict] = field(default_factory=list)  # codes to hear (`_hear_codes`), when out_dir is given
    speaker_naming: dict = field(default_factory=dict)  # speakers.speaker_naming: seen and unseen speakers


def find_textgrid(alignments: pathlib.Path, utt: Utterance) -> pathlib.Path | None:
    """MFA layouts: `<dir>/<speaker>/<utt>.TextGrid` or flat `<dir>/<utt>.TextGrid`."""
    for p in (alignments / utt.speaker / f"{utt.id}.TextGrid", alignments / f"{utt.id}.TextGrid"):
        if p.is_file():
            return p
    return None


def sample_utterances(utts: list[Utterance], minutes: float, seed: int = 0) -> list[Utterance]:
    """A seeded random subset of about `minutes` of speech, in the given order: utterances are
    drawn without replacement while the total stays within `minutes` (at least one)."""
    if not minutes > 0:
        raise AudioVQError(f"minutes must be positive, got {minutes}")
    order = np.random.default_rng(seed).permutation(len(utts))
    total = np.cumsum([utts[i].duration for i in order])
    n = max(1, int(np.searchsorted(total, minutes * 60, side="right")))
    return [utts[i] for i in np.sort(order[:n])]


def analyze(model, manifest: Manifest, alignments: str | os.PathLike, split: str = "all",
            out_dir: str | os.PathLike | None = None, mapping: dict | None = None,
            keep_silence: bool = True, tolerance: float = 0.1, mfcc: bool = True,
            progress: bool = True, meta: dict | None = None, abx: bool = True,
            minutes: float | None = None, hear_codes: Sequence[int] = (),
            hear_top: int = hear.TOP_CODES, model_speakers: Sequence[str] | None = None,
            unseen: bool = True) -> AnalysisResult:
    """Score `model`'s codes of `split` ("train", "val", "test" or "all") against phone labels;
    `abx` adds triphone ABX error rates (within / across speakers) of the learned codes, the
    encoder's continuous output z_e, MFCC and random codes (`analysis/abx.py`); `minutes`
    analyses a random sample of about that much of the split (`sample_utterances`).
    With `out_dir`, the `hear_top` most used codes and those in `hear_codes` are also cut from
    the audio to be heard on the report page (`analysis/hear.py`).
    Speaker naming (`analysis/speakers.py`): whether the codes name the speaker, apart for the
    speakers in `model_speakers` (the model's speaker table; default: the manifest's training
    speakers) and for the others, from whole utterances. With `unseen`, when the analysed
    utterances hold fewer than 2 unseen speakers, the manifest's utterances of speakers outside
    the table are encoded too, for that figure alone (e.g. the test split beside `--split val`).
    The report's meta records the wall and CPU (all threads) seconds of each stage."""
    clock, seconds, cpu_seconds = (time.perf_counter(), time.process_time()), {}, {}

    def lap(stage: str) -> None:  # the machine may be shared: CPU time is the steadier measure
        nonlocal clock
        now = time.perf_counter(), time.process_time()
        seconds[stage], cpu_seconds[stage] = round(now[0] - clock[0], 2), round(now[1] - clock[1], 2)
        clock = now

    K = model.quantizer.num_codes
    bad = [c for c in hear_codes if not 0 <= c < K]
    if bad:
        raise AudioVQError(f"code {bad[0]} is out of range: the model's codes are 0–{K - 1}")
    alignments = pathlib.Path(alignments)
    if not alignments.is_dir():
        raise AudioVQError(f"{alignments}: no such alignments directory")
    utts = manifest.utterances if split == "all" else manifest.split(split)
    if minutes is not None:
        utts = sample_utterances(utts, minutes)
    problems, kept, grids = Problems(), [], []
    for u in utts:
        path = find_textgrid(alignments, u)
        if path is None:
            problems.missing.append(u.id)
            continue
        try:
            tier = labels.phone_tier(read_textgrid(path), str(path))
        except AudioVQError:
            problems.no_phone_tier.append(u.id)
            continue
        end = max((iv.end for iv in tier), default=0.0)
        if end + tolerance < u.trim_start + u.duration:
            problems.too_short.append(u.id)
            continue
        kept.append(u)
        grids.append(labels.normalize_intervals(tier, mapping))
    if not kept:
        raise AudioVQError(f"{alignments}: no usable alignment for any of the {len(utts)} {split!r} "
                           f"utterances ({problems.summary()})")

    wavs = [audio.load(manifest.audio_path(u), model.sample_rate) for u in kept]
    lap("read")
    z_e: list[np.ndarray] = []  # the encoder's output before quantization, for the ABX row
    codes = encode_utterances(model, wavs, progress=progress, z_e=z_e if abx else None)
    lap("encode")
    # every frame's MFCCs, for the k-means row (labelled frames) and the ABX row (whole utterances);
    # one BLAS thread: for matrices this small extra threads only wait (4× the CPU time measured)
    with threadpool_limits(1, "blas"):
        mfccs = [baselines.mfcc_frames(w, model.sample_rate, model.code_rate, len(c))
                 for w, c in zip(wavs, codes)] if mfcc else []
    lap("mfcc")
    cols = {"codes": [], "phones": [], "groups": [], "speakers": [], "mfcc": []}
    outside = silence = 0
    for g, (u, c, grid) in enumerate(zip(kept, codes, grids)):
        lab = labels.frame_labels(grid, len(c), model.code_rate, offset=u.trim_start)
        keep = lab.inside.copy()
        outside += int((~lab.inside).sum())
        is_sil = lab.labels == labels.SILENCE
        silence += int((is_sil & keep).sum())
        if not keep_silence:
            keep &= ~is_sil
        cols["codes"].append(c[keep])
        cols["phones"].append(lab.labels[keep])
        cols["groups"].append(np.full(int(keep.sum()), g))
        cols["speakers"].append(np.full(int(keep.sum()), u.speaker, dtype=object))
        if mfcc:
            cols["mfcc"].append(mfccs[g][keep])
    naming = _speaker_naming(model, manifest, kept, codes, model_speakers, unseen, minutes, progress)
    lap("speaker naming")
    phones = labels.encode_phones(np.concatenate(cols["phones"]))
    rows = compare_methods(np.concatenate(cols["codes"]), phones.ids, np.concatenate(cols["groups"]),
                           np.concatenate(cols["speakers"]), model.code_rate, K, phones.names,
                           mfcc=np.concatenate(cols["mfcc"]) if mfcc else None,
                           hold=model.code_stride)
    lap("metrics")
    summary = ""
    if abx:
        summary = _add_abx(rows, model, kept, codes, z_e, mfccs, grids)
        lap("abx")
    info = dict(meta or {}, split=split, utterances=len(kept), frames=len(phones.ids),
                frames_outside=outside, frames_silence=silence, keep_silence=keep_silence,
                code_rate=model.code_rate, code_stride=model.code_stride, K=K, problems=problems.summary(),
                minutes=round(sum(u.duration for u in kept) / 60, 2), seconds=seconds, cpu_seconds=cpu_seconds,
                intervals={"level": confidence.LEVEL, "resamples": confidence.RESAMPLES,
                           "phone_scores_over": "utterances", "abx_over": "A speakers",
                           "speaker_naming_over": "utterances",
                           "abx_min_triplets": confidence.MIN_TRIPLETS, "abx_min_cells": confidence.MIN_CELLS})
    heard = []
    if out_dir:
        heard = _hear_codes(model, wavs, codes, rows[LEARNED], hear_codes, hear_top, pathlib.Path(out_dir))
        lap("hear")
    files = write_report(out_dir, rows, info, heard=heard, naming=naming) if out_dir else []
    table = format_table(rows) + format_intervals(rows) + summary + "\n".join(speakers.format_naming(naming)) + "\n"
    return AnalysisResult(rows, table, files, len(phones.ids), len(kept), problems, outside, silence, heard, naming)


def _speaker_naming(model, manifest: Manifest, kept: list[Utterance], codes: list[np.ndarray],
                    model_speakers: Sequence[str] | None, unseen: bool, minutes: float | None,
                    progress: bool) -> dict:
    """`speakers.speaker_naming` of the analysed utterances, with the manifest's utterances of
    unseen speakers added (encoded here; a seeded sample of `minutes` of them when given) where
    the analysed ones hold fewer than 2 unseen speakers."""
    table = set(model_speakers) if model_speakers is not None else set(manifest.speaker_ids("train"))
    utts, all_codes = list(kept), list(codes)
    if unseen and len({u.speaker for u in kept if u.speaker not in table}) < 2:
        ids = {u.id for u in kept}
        extra = [u for u in manifest.utterances if u.speaker not in table and u.id not in ids]
        if extra and minutes is not None:
            extra = sample_utterances(extra, minutes)
        if len({u.speaker for u in extra + kept if u.speaker not in table}) >= 2:
            wavs = [audio.load(manifest.audio_path(u), model.sample_rate) for u in extra]
            utts += extra
            all_codes += encode_utterances(model, wavs, progress=progress)
    return speakers.speaker_naming(all_codes, [u.speaker for u in utts], table, model.quantizer.num_codes)


def _hear_codes(model, wavs: list[np.ndarray], codes: list[np.ndarray], learned: dict, asked: Sequence[int],
                top: int, out_dir: pathlib.Path) -> list[dict]:
    """Clips of the `top` most used codes and the `asked` ones, written as wavs (and their
    spectrograms) to `report_files/codes/` under out_dir; one JSON-ready dict per code, its
    files relative to out_dir."""
    from .. import webpage
    from .report import PAGE

    folder = webpage.files_dir(out_dir / PAGE) / "codes"
    folder.mkdir(parents=True, exist_ok=True)
    for old in [*folder.glob("*.wav"), *folder.glob("*.png")]:  # clips of an earlier analysis
        old.unlink()
    table = np.asarray(learned["contingency"])
    chosen = hear.most_used(table, top)
    chosen += [int(c) for c in dict.fromkeys(asked) if int(c) not in chosen]
    out = []
    for code in chosen:
        clip = hear.code_clip(wavs, codes, code, model.hop, model.sample_rate)
        entry = {"code": code, "asked": code in asked, "frames": clip.frames, "runs": clip.total,
                 "runs_heard": len(clip.occurrences), "seconds": clip.audio.size / model.sample_rate,
                 "phones": [[p, share] for p, share in hear.top_phones(table, learned["phone_names"], code)],
                 "audio": None, "spectrogram": None}
        if clip.audio.size:
            wav = folder / f"code-{code:04d}.wav"
            audio.save(wav, clip.audio, model.sample_rate)
            png = webpage.spectrogram(clip.audio, model.sample_rate, folder / f"code-{code:04d}.png")
            entry.update(audio=wav.relative_to(out_dir).as_posix(),
                         spectrogram=png.path.relative_to(out_dir).as_posix())
        out.append(entry)
    return out


Z_E, MFCC_FEATURES = "z_e (continuous)", "MFCC (continuous)"


@torch.no_grad()
def _add_abx(rows: dict, model, utts: list[Utterance], codes: list[np.ndarray], z_e: list[np.ndarray],
             mfccs: list[np.ndarray], grids: list, seed: int = 0) -> str:
    """ABX rows: learned codes and random codes as codeword vectors (what the decoder sees),
    z_e before quantization, MFCC (when `mfccs` has each utterance's); every utterance whole
    (silence only bounds contexts). Returns the ZeroSpeech-style summary lines with how much
    was scored (items after subsampling, cells and triplets); adds abx_* keys to `rows` (new
    rows for the continuous features)."""
    from . import abx as abx_mod

    lookup = lambda c: model.quantizer.lookup(torch.from_numpy(np.asarray(c, np.int64))[None])[0].T.numpy()
    features = {LEARNED: [lookup(c) for c in codes],
                Z_E: z_e}
    if mfccs:
        features[MFCC_FEATURES] = mfccs
    # uniform codes, drawn as for the random row's other metrics, over every frame of every utterance
    random = baselines.random_codes(sum(len(c) for c in codes), model.quantizer.num_codes, seed)
    features[RANDOM] = [lookup(c) for c in np.split(random, np.cumsum([len(c) for c in codes])[:-1])]
    speakers, offsets = [u.speaker for u in utts], [u.trim_start for u in utts]
    lines = []
    for name, feats in features.items():
        r = abx_mod.abx(feats, grids, speakers, model.code_rate, offsets=offsets, seed=seed)
        row = rows.setdefault(name, {})
        row.update(abx_within=r.within, abx_across=r.across, abx_triplets=r.triplets, abx_seconds=r.seconds,
                   abx_triplets_within=r.triplets_within, abx_triplets_across=r.triplets_across,
                   abx_cells_within=r.cells_within, abx_cells_across=r.cells_across,
                   abx_items=r.items, abx_items_total=r.items_total,
                   abx_within_ci=None if r.within_ci is None else list(r.within_ci),
                   abx_across_ci=None if r.across_ci is None else list(r.across_ci),
                   abx_within_enough=confidence.enough(r.triplets_within, r.cells_within),
                   abx_across_enough=confidence.enough(r.triplets_across, r.cells_across))
        if r.reason:
            row["abx_note"] = r.reason
        lines.append(f"{name}: {abx_mod.described_line(r, row.get('bitrate'))} ({r.items:,} of {r.items_total:,} "
                     f"items; {r.triplets_within:,} + {r.triplets_across:,} triplets in {r.cells_within:,} within + "
                     f"{r.cells_across:,} across cells; {r.seconds:.1f} s)")
    note = (f"ABX intervals: {confidence.LEVEL:.0%}, basic bootstrap over the A speakers; no interval where a "
            f"score rests on fewer than {confidence.MIN_TRIPLETS} triplets or {confidence.MIN_CELLS} cells")
    return "\n".join(lines + [note]) + "\n"
