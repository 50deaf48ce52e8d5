#!/usr/bin/env python
"""Cross-check audiovq's triphone ABX (audiovq/analysis/abx.py) against fastabx on the same items.

fastabx (CoML's maintained ZeroSpeech ABX) needs Python >= 3.12 and torch >= 2.10, so it lives in a
side environment outside the repository. Build it once (PyPI's torch wheel brings its CUDA libraries,
about 5 GB in all; the CPU-only index is not reachable from every machine):

    ~/.pyenv/versions/3.12.1/bin/python -m venv ~/.cache/audiovq/fastabx-py312
    ~/.cache/audiovq/fastabx-py312/bin/pip install torch==2.11.0 fastabx==0.9.0

Then the two commands (the first in the project venv, which needs no fastabx; the second in the side
environment, which needs no audiovq):

    .venv/bin/python tools/abx_crosscheck.py dump /tmp/abx-xcheck
    ~/.cache/audiovq/fastabx-py312/bin/python tools/abx_crosscheck.py score /tmp/abx-xcheck

`dump` takes the first `--sentences` sentences of every speaker (or of the first `--speakers`) of
the embedded corpus (each speaker reads the same sentences), computes
their features (MFCC, or the shipped model's codeword vectors with `--features codes`), scores our
ABX with no subsampling, and writes the folder: features/<utterance>.npy (frames, dim) from the start
of the prepared audio, abx.item (ZeroSpeech item file on that timeline, plus our frame range of each
item) and ours.json. `score` checks that fastabx slices the same frames, scores fastabx's ZeroSpeech
triphone ABX (angular distance, DTW, within and across speaker, context kept, no subsampling), and
compares: exit status 1 when an error rate differs by more than `--tolerance`.

Last run (fastabx 0.9.0, torch 2.11.0, 2026-11): same items, cells and triplets; MFCC within and
across agree to 1e-9. On codeword vectors (`--features codes`) across differs by 7e-5: fastabx's
float32 arccos puts identical vectors 2e-4 apart instead of 0, which breaks ties that score 0.5 here.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

DATA = "data/embedded-24+flitex60-seed0/prepared-8000"
ITEM_COLUMNS = "#file onset offset #phone prev-phone next-phone speaker our_start our_stop".split()


def dump(out: pathlib.Path, data: str, sentences: int, speakers: int | None, features: str) -> None:
    """Mode A (project venv): our ABX, and the items and features it used."""
    from audiovq import audio
    from audiovq.analysis import abx, baselines, labels
    from audiovq.analysis.pipeline import find_textgrid
    from audiovq.data.alignments import read_textgrid
    from audiovq.data.manifest import Manifest

    manifest = Manifest.load(data)
    align = pathlib.Path(manifest.source_root) / "alignments"
    wanted = {f"{k:03d}" for k in range(1, sentences + 1)}
    voices = {s.id for s in manifest.speakers[:speakers]}
    utts = [u for u in manifest.utterances
            if u.id.rsplit("_", 1)[-1] in wanted and u.speaker in voices and find_textgrid(align, u)]
    grids = [labels.normalize_intervals(labels.phone_tier(read_textgrid(find_textgrid(align, u))))
             for u in utts]
    wavs = [audio.load(manifest.audio_path(u), manifest.sample_rate) for u in utts]
    if features == "codes":  # what `audiovq analyze` scores: the shipped model's codeword vectors
        import torch
        from audiovq.codes import encode_utterances
        from audiovq.models import load_vqvae
        model = load_vqvae().model
        rate = model.code_rate
        codes = encode_utterances(model, wavs, progress=False)
        with torch.no_grad():
            feats = [model.quantizer.lookup(torch.from_numpy(c.astype(np.int64))[None])[0].T.numpy() for c in codes]
    else:
        rate = 100
        feats = [baselines.mfcc_frames(w, manifest.sample_rate, rate) for w in wavs]
    if float(rate) != int(rate):
        sys.exit(f"frame rate {rate} Hz is not whole: fastabx wants it exact (pass it as a string)")
    rate = int(rate)
    speakers, offsets = [u.speaker for u in utts], [u.trim_start for u in utts]

    r = abx.abx(feats, grids, speakers, rate, offsets=offsets, max_per_category=None, max_x_speakers=None)
    # the items `abx` used (it calls these two), on the timeline of each feature file
    items = abx.triphone_items(grids, speakers)
    starts, stops = abx.item_frames(items, [len(f) for f in feats], rate, offsets)
    clipped = 0
    (out / "features").mkdir(parents=True, exist_ok=True)
    for u, f in zip(utts, feats):
        np.save(out / "features" / f"{u.id}.npy", np.asarray(f, np.float32))
    lines = [" ".join(ITEM_COLUMNS)]
    for it, a, b in zip(items, starts, stops):
        if b <= a:
            continue
        u, n = utts[it.utterance], len(feats[it.utterance])
        # items past the ends of the audio are cut to its frames (ours keeps the frames there; fastabx
        # refuses slices beyond the features)
        on, off = max(it.onset - u.trim_start, 0.0), min(it.offset - u.trim_start, n / rate)
        clipped += (on, off) != (it.onset - u.trim_start, it.offset - u.trim_start)
        lines.append(f"{u.id} {on:.9f} {off:.9f} {it.phone} {it.prev} {it.next} {it.speaker} {a} {b}")
    (out / "abx.item").write_text("\n".join(lines) + "\n")
    summary = dict(features=features, frequency=rate, utterances=len(utts), items=len(lines) - 1,
                   items_clipped=clipped, within=r.within, across=r.across, cells_within=r.cells_within,
                   cells_across=r.cells_across, triplets_within=r.triplets_within,
                   triplets_across=r.triplets_across, seconds=r.seconds)
    (out / "ours.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


def score(out: pathlib.Path, tolerance: float) -> int:
    """Mode B (side environment with fastabx): fastabx's numbers on the dumped items, compared."""
    import importlib.metadata as md

    import torch
    from fastabx import Dataset, Score, Subsampler, Task, zerospeech_abx

    ours = json.loads((out / "ours.json").read_text())
    item, root, freq = out / "abx.item", out / "features", ours["frequency"]
    load = lambda p: torch.from_numpy(np.load(p))
    kw = dict(frequency=freq, feature_maker=load, extension=".npy", device="cpu", progress=False)

    ds = Dataset.from_item(item, root, **kw)
    lengths = ds.accessor.lengths(list(range(len(ds.labels))))
    ours_len = (ds.labels["our_stop"] - ds.labels["our_start"]).to_numpy()
    bad = int((lengths != ours_len).sum())
    for i in range(len(ds.labels)):  # same frames, not just as many
        f = np.load(root / f"{ds.labels['#file'][i]}.npy")[ds.labels["our_start"][i]:ds.labels["our_stop"][i]]
        bad += not np.array_equal(ds.accessor[i].numpy(), f) if len(f) == lengths[i] else 0
    result = dict(fastabx=md.version("fastabx"), torch=torch.__version__, items=len(ds.labels),
                  items_with_other_frames=bad)
    levels = [("next-phone", "prev-phone"), "speaker"]  # what zerospeech_abx collapses over
    worst = 0.0
    for mode, by, across in (("within", ["prev-phone", "next-phone", "speaker"], None),
                             ("across", ["prev-phone", "next-phone"], ["speaker"])):
        t0 = time.perf_counter()
        err = zerospeech_abx(item, root, max_size_group=None, max_x_across=None, speaker=mode, **kw)
        seconds = time.perf_counter() - t0
        task = Task(Dataset.from_item(item, root, **kw), on="#phone", by=by, across=across,
                    subsampler=Subsampler(None, None))
        s = Score(task, "angular", progress=False)
        assert abs(s.collapse(levels=levels) - err) < 1e-9
        diff = abs(err - ours[mode]) if ours[mode] is not None else float("inf")
        worst = max(worst, diff)
        result[mode] = dict(fastabx=err, ours=ours[mode], diff=diff, cells_fastabx=len(s.cells),
                            cells_ours=ours[f"cells_{mode}"], triplets_fastabx=int(s.cells["size"].sum()),
                            triplets_ours=ours[f"triplets_{mode}"], seconds_fastabx=seconds)
    result["seconds_ours_both"] = ours["seconds"]
    print(json.dumps(result, indent=1))
    ok = worst <= tolerance and bad == 0
    print(f"{'AGREE' if ok else 'DISAGREE'}: max |fastabx - ours| = {worst:.2e} (tolerance {tolerance:g}), "
          f"{bad} items with other frames")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    d = sub.add_parser("dump", help="mode A (project venv): our ABX + items + features")
    d.add_argument("out", type=pathlib.Path)
    d.add_argument("--data", default=DATA, help=f"prepared corpus (default {DATA})")
    d.add_argument("--sentences", type=int, default=10, help="sentences per speaker (default 10)")
    d.add_argument("--speakers", type=int, help="the first N speakers only (default all)")
    d.add_argument("--features", choices=["mfcc", "codes"], default="mfcc",
                   help="MFCC at 100 Hz, or the shipped model's codeword vectors")
    s = sub.add_parser("score", help="mode B (Python 3.12 + fastabx): fastabx on the same items, compared")
    s.add_argument("out", type=pathlib.Path)
    s.add_argument("--tolerance", type=float, default=1e-3)
    a = p.parse_args()
    if a.mode == "dump":
        dump(a.out, a.data, a.sentences, a.speakers, a.features)
        return 0
    return score(a.out, a.tolerance)


if __name__ == "__main__":
    sys.exit(main())
