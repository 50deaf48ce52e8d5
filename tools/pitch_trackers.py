"""Choose a pitch tracker: speed and agreement of the candidates issue #20 names, on signals of
known F0 and on the embedded corpus.

Candidates (each used if importable; none is a dependency of audiovq for this comparison):
pyworld (WORLD's Harvest, and DIO + StoneMask), praat-parselmouth (Praat's autocorrelation
method), torchcrepe (CREPE, its bundled "tiny" and "full" weights) and torchfcpe (FCPE,
bundled weights). All at a 4 ms frame step (the demo model's code rate, 250 frames/s) on
8 kHz audio, F0 search range 50–600 Hz.

1. Known F0: vowel-like signals (a glottal-like pulse train with a moving F0 through five
   formant resonators, unvoiced noise stretches between the voiced ones) with the F0 track
   and voicing as ground truth: gross pitch error (GPE: voiced frames both call voiced, off by
   > 20 %), fine error (cents, median, over the rest) and voicing decision error (VDE).
2. The corpus: --utterances of the prepared embedded corpus (espeak and flite voices, no
   ground truth): each tracker's GPE and VDE against every other's, and seconds of CPU per
   second of audio (one thread).

    python tools/pitch_trackers.py --data data/embedded-24+flitex60-seed0/prepared-8000 [--utterances 48]

Run it in a side environment that has the candidates (pip install pyworld praat-parselmouth
torchcrepe torchfcpe); docs/benchmarks.md has the figures and the choice.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np
import soundfile as sf
import torch

SR = 8000
STEP = 0.004          # seconds per frame
FMIN, FMAX = 50.0, 600.0


def frames_of(n: int) -> int:
    return int(np.ceil(n / (SR * STEP)))


def _fit(f0: np.ndarray, n: int) -> np.ndarray:
    f0 = np.asarray(f0, dtype=np.float64).ravel()[:n]
    return np.pad(f0, (0, n - f0.size))


# ----------------------------------------------------------------------------- trackers
def harvest(x):
    import pyworld
    f0, _ = pyworld.harvest(x.astype(np.float64), SR, f0_floor=FMIN, f0_ceil=FMAX, frame_period=STEP * 1000)
    return f0


def dio(x):
    import pyworld
    x = x.astype(np.float64)
    f0, t = pyworld.dio(x, SR, f0_floor=FMIN, f0_ceil=FMAX, frame_period=STEP * 1000)
    return pyworld.stonemask(x, f0, t, SR)


def praat(x):
    import parselmouth
    pitch = parselmouth.Sound(x.astype(np.float64), SR).to_pitch_ac(time_step=STEP, pitch_floor=FMIN,
                                                                     pitch_ceiling=FMAX)
    f0 = pitch.selected_array["frequency"]
    # Praat's first frame is centred at (duration − (n − 1)·step) / 2: shift onto our grid
    first = int(round((pitch.xs()[0] - STEP / 2) / STEP)) if len(f0) else 0
    return np.concatenate([np.zeros(max(first, 0)), f0])


def crepe(model):
    def track(x):
        import torchcrepe
        audio = torch.from_numpy(x.astype(np.float32))[None]
        f0, periodicity = torchcrepe.predict(audio, SR, hop_length=int(SR * STEP), fmin=FMIN, fmax=FMAX, model=model,
                                             return_periodicity=True, batch_size=512, device="cpu", pad=True)
        f0, periodicity = f0[0].numpy(), periodicity[0].numpy()
        return np.where(periodicity > 0.21, f0, 0.0)  # torchcrepe's documented voicing threshold
    return track


def fcpe(x):
    from torchfcpe import spawn_bundled_infer_model
    global _FCPE
    if "_FCPE" not in globals():
        _FCPE = spawn_bundled_infer_model(device="cpu")
    audio = torch.from_numpy(x.astype(np.float32))[None, :, None]
    with torch.no_grad():
        f0 = _FCPE.infer(audio, sr=SR, decoder_mode="local_argmax", threshold=0.006, f0_min=FMIN, f0_max=FMAX,
                         interp_uv=False, output_interp_target_length=frames_of(x.size))
    return f0[0, :, 0].numpy()


CANDIDATES = {"pyworld-harvest": harvest, "pyworld-dio": dio, "praat-ac": praat,
              "torchcrepe-tiny": crepe("tiny"), "torchcrepe-full": crepe("full"), "torchfcpe": fcpe}


def available(names=None) -> dict:
    out = {}
    probe = np.random.default_rng(0).standard_normal(SR // 2).astype(np.float32) * 0.1
    for name, fn in CANDIDATES.items():
        if names is not None and name not in names:
            continue
        try:
            fn(probe)
            out[name] = fn
        except Exception as e:  # not installed, or no bundled weights
            print(f"{name}: not available ({type(e).__name__}: {str(e).splitlines()[0][:80]})")
    return out


# ----------------------------------------------------------------------------- measures
def compare(ref: np.ndarray, est: np.ndarray) -> dict:
    """GPE, fine error (median cents) and VDE of est against ref (0 = unvoiced)."""
    n = min(ref.size, est.size)
    ref, est = ref[:n], est[:n]
    rv, ev = ref > 0, est > 0
    both = rv & ev
    ratio = np.abs(np.log2(np.where(both, est, 1) / np.where(both, ref, 1)))
    gross = both & (ratio > np.log2(1.2))
    fine = both & ~gross
    return {"gpe": float(gross.sum() / max(both.sum(), 1)), "vde": float((rv != ev).mean()),
            "cents": float(np.median(1200 * ratio[fine])) if fine.any() else float("nan")}


def known_f0_signals(count: int = 12, seconds: float = 2.0, seed: int = 0):
    """(waveform, true F0 per frame (0 = unvoiced)): pulses at a moving F0 through formant
    resonators, with stretches of noise."""
    from scipy.signal import lfilter
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n = int(seconds * SR)
        t = np.arange(n) / SR
        base = rng.uniform(80, 300)
        f0 = base * 2 ** (rng.uniform(0.1, 0.5) * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t + rng.uniform(0, 6)))
        voiced = np.ones(n, bool)
        for _ in range(2):  # two unvoiced stretches of 0.1–0.25 s
            a = rng.integers(0, n - SR // 4)
            voiced[a:a + rng.integers(SR // 10, SR // 4)] = False
        phase = np.cumsum(f0 / SR)
        pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
        glottal = lfilter([1.0], [1.0, -0.95], pulses)  # a falling spectrum
        x = np.where(voiced, glottal, 0.3 * rng.standard_normal(n))
        for formant, bw in zip(rng.uniform([500, 1200, 2300, 3000, 3500], [900, 1800, 2800, 3400, 3900]),
                               [80, 100, 120, 150, 200]):
            r = np.exp(-np.pi * bw / SR)
            x = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * formant / SR), r * r], x)
        x = (0.5 * x / np.abs(x).max()).astype(np.float32)
        F = frames_of(n)
        centres = np.minimum((np.arange(F) * STEP * SR + STEP * SR / 2).astype(int), n - 1)
        # truth: voiced only where the whole frame ±1 frame is voiced (boundaries are ambiguous)
        vf = np.array([voiced[max(0, c - 48):c + 48].all() for c in centres])
        uf = np.array([not voiced[max(0, c - 48):c + 48].any() for c in centres])
        truth = np.where(vf, f0[centres], 0.0)
        truth[~vf & ~uf] = np.nan  # excluded
        out.append((x, truth))
    return out


def score_known(trackers: dict) -> dict:
    signals = known_f0_signals()
    result = {}
    for name, fn in trackers.items():
        rows = []
        for x, truth in signals:
            est = _fit(fn(x), truth.size)
            keep = ~np.isnan(truth)
            rows.append(compare(truth[keep], est[keep]))
        result[name] = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
    return result


def corpus_utterances(data: pathlib.Path, count: int):
    manifest = json.loads((data / "manifest.json").read_text())
    by_speaker: dict[str, list] = {}
    for u in manifest["utterances"]:
        by_speaker.setdefault(u["speaker"], []).append(u)
    speakers = sorted(by_speaker)
    picks = [by_speaker[s][i // len(speakers)] for i, s in zip(range(count), speakers * count)]
    return [sf.read(data / u["path"], dtype="float32")[0] for u in picks]


def score_corpus(trackers: dict, audio: list[np.ndarray]) -> tuple[dict, dict]:
    tracks, speed = {}, {}
    torch.set_num_threads(1)
    for name, fn in trackers.items():
        cpu = time.process_time()
        tracks[name] = [_fit(fn(x), frames_of(x.size)) for x in audio]
        speed[name] = (time.process_time() - cpu) / (sum(x.size for x in audio) / SR)
    agree = {}
    for a in trackers:
        for b in trackers:
            if a < b:
                rows = [compare(x, y) for x, y in zip(tracks[a], tracks[b])]
                agree[f"{a} | {b}"] = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
    return speed, agree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=pathlib.Path, required=True, help="a prepared corpus at 8 kHz")
    ap.add_argument("--utterances", type=int, default=48)
    ap.add_argument("--trackers", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES),
                    help="the candidates to compare (default all)")
    a = ap.parse_args()
    trackers = available(a.trackers)
    print("\nknown F0 (12 synthetic 2-s signals): GPE %, fine error (median cents), VDE %")
    for name, r in score_known(trackers).items():
        print(f"  {name:16} GPE {100 * r['gpe']:5.1f}  fine {r['cents']:5.1f}  VDE {100 * r['vde']:5.1f}")
    audio = corpus_utterances(a.data, a.utterances)
    speed, agree = score_corpus(trackers, audio)
    print(f"\ncorpus ({len(audio)} utterances, {sum(x.size for x in audio) / SR:.0f} s): CPU s per s of audio, one thread")
    for name, s in speed.items():
        print(f"  {name:16} {s:7.4f}")
    print("\npairwise agreement on the corpus: GPE %, VDE %")
    for pair, r in agree.items():
        print(f"  {pair:36} GPE {100 * r['gpe']:5.1f}  VDE {100 * r['vde']:5.1f}  fine {r['cents']:5.1f}")


if __name__ == "__main__":
    main()
