"""Speaker conversion and the code file format: encode a source to codes, decode the codes
with another speaker's embedding (paper, section 4.3), keep the source's loudness.

A codes file is `NAME.npz` (arrays `codes` (F,) and `meta` JSON) or `NAME.npy` with a
`NAME.json` header beside it; the header records the code rate, K, sample rate, length and
the checkpoint, so `decode` can refuse codes from another model.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import math
import os
import re
import pathlib
import signal
import tempfile
import threading
from typing import NamedTuple

import numpy as np
import soundfile as sf
import torch

from . import audio
from .atomic import atomic_path, write_text
from .errors import AudioError, AudioVQError
from .filelock import folder_lock
from .generate.engine import BLOCK, check_precision, stream
from .generate.renderers import renderer_named
from .models import LoadedVQVAE



class Converted(NamedTuple):
    source: pathlib.Path
    target: str
    output: pathlib.Path
    seconds: float
    skipped: bool = False  # finished by an earlier run (listed in its conversions.json), not redone


def expand_sources(paths: list[str]) -> list[pathlib.Path]:
    """Files as given, folders → their audio files (sorted)."""
    found: list[pathlib.Path] = []
    for p in map(pathlib.Path, paths):
        if p.is_dir():
            inside = sorted(f for f in p.rglob("*") if f.suffix.lower() in audio.SUFFIXES)
            if not inside:
                raise AudioVQError(f"{p}: folder holds no .wav/.flac/.ogg files")
            found += inside
        else:
            found.append(p)
    return found


class _Level:
    """RMS level (as `audio.loudness_db`) and peak of a signal seen block by block."""

    def __init__(self):
        self.samples, self.sum_squares, self.peak = 0, 0.0, 0.0

    def add(self, y: np.ndarray) -> None:
        if y.size:
            self.samples += y.size
            self.sum_squares += float(np.square(y, dtype=np.float64).sum())
            self.peak = max(self.peak, float(np.abs(y).max()))

    @property
    def silent(self) -> bool:
        return audio.is_silent(np.array([self.peak], np.float32))

    @property
    def db(self) -> float:
        return 20 * math.log10(max(math.sqrt(self.sum_squares / max(self.samples, 1)), 1e-10))


class _Source(NamedTuple):
    codes: np.ndarray  # (F,) int64
    samples: int       # length at the model rate
    level_db: float    # RMS level
    f0: np.ndarray | None = None  # (F,) float32 Hz per code frame (0 unvoiced) when the decoder takes F0


PITCH_MARGIN = 0.25  # s of signal read on each side of a window for the pitch tracker (DIO's
# analysis reaches ~3 periods of its 50 Hz floor), so a window's F0 is that of the whole file
F0_MODES = ("source", "predicted")


def _encode_source(model, path: pathlib.Path, track_pitch: bool = False) -> _Source:
    """Codes and level of one source, read and encoded a window at a time (memory: one window,
    whatever the length). The windows and margins are those of `AudioVQVAE.encode` on the
    whole waveform, so the codes are the same; each window is read with 0.1 s more signal on
    both sides, so that its resampling equals the whole file's up to rounding."""
    info = audio.info(path)
    sr, hop = model.sample_rate, model.hop
    g = math.gcd(info.sample_rate, sr)
    up, down = sr // g, info.sample_rate // g
    n = -(-info.frames * up // down)  # samples at the model rate, as `audio.load` gives
    if n == 0:
        audio.load(path, sr)  # raises the usual error
    context = 0 if up == down else -(-(info.sample_rate // 10) // down) * down

    def read(lo: int, hi: int) -> np.ndarray:
        """Samples lo … hi − 1 at the model rate (fewer at the end)."""
        hi = min(hi, n)
        f0 = max(0, lo // up * down - context)  # file samples, from a multiple of `down`
        f1 = min(info.frames, -(-hi // up) * down + context)
        y = audio.load(path, sr, start=f0 / info.sample_rate, duration=(f1 - f0) / info.sample_rate)
        first = lo - f0 * up // down
        return y[first:first + hi - lo]

    T = n + (-n) % hop
    device = next(model.parameters()).device
    level = _Level()
    codes = np.empty(T // hop, np.int64)  # filled in place: no long-lived pieces between the windows' buffers
    f0 = np.zeros(T // hop, np.float32) if track_pitch else None
    for w in model.encode_windows(T):
        y = read(w.lo, w.hi)
        level.add(y[w.start - w.lo:w.stop - w.lo])
        x = torch.from_numpy(np.pad(y, (0, w.hi - w.lo - y.size)))[None].to(device)
        ind = model.encode(x, chunk=w.hi - w.lo)[0].cpu().numpy()  # one pass over the window
        first, count = (w.start - w.lo) // hop, (w.stop - w.start) // hop
        codes[w.start // hop:w.start // hop + count] = ind[first:first + count]
        if track_pitch:
            f0[w.start // hop:w.start // hop + count] = _track_window(read, w.start, w.stop, sr, hop, path)
    if level.silent:
        raise AudioError(f"{path}: audio is silent (peak below {audio.SILENCE_DBFS:.0f} dBFS)")
    return _Source(codes, n, level.db, f0)


def _track_window(read, start: int, stop: int, sr: int, hop: int, path) -> np.ndarray:
    """F0 of the code frames start // hop … stop // hop − 1 (start, stop whole hops), tracked
    over the window with PITCH_MARGIN of signal each side; 0 (unvoiced) where it is silent."""
    from .data.pitch import track
    margin = -(-int(PITCH_MARGIN * sr) // hop) * hop
    lo = max(0, start - margin)
    y = read(lo, stop + margin)
    frames = (stop - start) // hop
    if y.size < hop or audio.is_silent(y[start - lo:stop - lo]):
        return np.zeros(frames, np.float32)
    f = track(y, sr, hop, name=str(path))
    first = (start - lo) // hop
    out = np.zeros(frames, np.float32)
    kept = f[first:first + frames]
    out[:kept.size] = kept
    return out


def source_f0(model, source: _Source, target: int, mode: str, shift: float) -> np.ndarray | None:
    """The F0 (F,) Hz a conversion is generated with, for a source and a target speaker index:
    "source": the source's F0 moved onto the target's log-F0 statistics (held in the decoder,
    from its training corpus: `pitch_statistics`) by `pitch.map_f0`, `shift` semitones higher,
    the source's statistics being those of the utterance (its speaker is in general unknown);
    "predicted": None, the decoder's F0 head predicts it from the codes a window at a time (the
    paper's behaviour: the decoder invents the prosody), shifted by `stream(f0_shift=…)` with
    its voicing probability kept."""
    from .data.pitch import PitchStats, map_f0, stats
    if mode == "predicted":
        return None
    to = PitchStats(*model.decoder.pitch_statistics(target), 0)
    try:
        own = stats([source.f0])
    except AudioError:  # (almost) nothing voiced, e.g. a whisper: it stays unvoiced
        return source.f0.copy()
    return map_f0(source.f0, own, to, shift)


def convert(m: LoadedVQVAE, sources: list[pathlib.Path], targets: list[str], out: str | os.PathLike,
            temperature: float = 1.0, seed: int = 0, fast: bool = True, batch_size: int = 8,
            progress: bool = True, overwrite: bool = False, source_speakers: dict | None = None,
            block: int = BLOCK, precision: str = "float32", f0: str | None = None,
            f0_shift: float = 0.0, renderer: str | None = None) -> tuple[list[Converted], float]:
    """Convert every source to every target speaker. `out` is a folder (or, for one source and
    one target, a .wav path). Returns the conversions (in source × target order) and the
    real-time factor of the generation.

    Outputs are generated and written a block at a time (memory does not grow with the
    length), each to a temporary name renamed when complete; `conversions.json` beside them
    is rewritten after each one and lists exactly the finished ones. An output listed there
    by an earlier run with the same checkpoint, temperature, seed and precision is kept, not redone,
    unless `overwrite`. An interruption (KeyboardInterrupt) leaves no partial file.

    A decoder that takes F0 (`needs_pitch`) gets the source's, mapped to the target (`f0`
    "source", its default) or its own F0 head's (`f0` "predicted"), `f0_shift` semitones
    higher (`source_f0`). `renderer` (generate/renderers/): "network" samples the decoder's
    network; "pulses" or "world" render a source-filter decoder's envelope with no network;
    None: the one the model was exported with (`LoadedVQVAE.renderer`).
    """
    model = m.model
    renderer = renderer or m.renderer
    pitched = getattr(model.decoder, "needs_pitch", False)
    if f0 is not None and f0 not in F0_MODES:
        raise AudioVQError(f"--f0 must be one of {', '.join(F0_MODES)}, not {f0!r}")
    if not pitched and (f0 is not None or f0_shift):
        raise AudioVQError(f"the {model.decoder.kind} decoder of {m.path} takes no F0 (--f0, --f0-shift "
                           "are for a decoder with explicit pitch, e.g. model.decoder.kind=source_filter)")
    renderer_named(renderer).check(model.decoder)  # before any work
    if not math.isfinite(f0_shift) or abs(f0_shift) > 24:
        raise AudioVQError(f"--f0-shift must be a number of semitones within ±24, not {f0_shift}")
    f0 = f0 or "source"
    speaker_idx = [m.speaker_index(t) for t in targets]  # unknown speakers fail before any work
    check_precision(model.decoder.network, fast, precision)
    out = pathlib.Path(out)
    single = len(sources) * len(targets) == 1 and out.suffix.lower() in audio.SUFFIXES
    folder = out.parent if single else out
    jobs = [(i, t, k) for i in range(len(sources)) for t, k in zip(targets, speaker_idx)]
    paths = [out if single else out / f"{sources[i].stem}_to_{t}.wav" for i, t, _ in jobs]
    settings = {"temperature": temperature, "seed": seed, "precision": precision}
    if pitched:
        settings.update(f0=f0, f0_shift=f0_shift)
    if renderer != "network":  # (absent for the network: earlier listings stay valid)
        settings.update(renderer=renderer)
    speakers = source_speakers or {}

    def kept() -> dict[int, Converted]:
        """The outputs an earlier run finished with these settings (none when `overwrite`)."""
        earlier = set() if overwrite else _finished(folder, m.path, settings)
        return {j: Converted(sources[i], t, paths[j], audio.info(paths[j]).duration, skipped=True)
                for j, (i, t, _) in enumerate(jobs) if (str(sources[i]), t, str(paths[j])) in earlier
                and paths[j].is_file()}

    def publish() -> None:
        write_conversions(folder, [done[j] for j in sorted(done)], m.path, speakers, settings)

    done = kept()
    encoded: dict[int, _Source] = {}  # a bad source fails here, before any file is written
    for i in dict.fromkeys(i for j, (i, _, _) in enumerate(jobs) if j not in done):
        encoded[i] = _encode_source(model, sources[i], track_pitch=pitched and f0 == "source")
    # One run writes a folder at a time (its outputs and listing); a second one waits, then
    # does what the first left undone.
    with folder_lock(folder / ".conversions", announce=progress, remove=True):
        done = kept()
        pending = [j for j in range(len(jobs)) if j not in done]
        for j in pending:
            _Writer.remove_stale(paths[j])
        publish()
        sr = model.sample_rate
        from tqdm import tqdm
        # seconds of audio done / to do, time spent < time left (ETA), real-time factor
        bar = tqdm(total=sum(encoded[jobs[j][0]].samples for j in pending) / sr, unit="s", desc="converting",
                   disable=not progress, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s audio "
                                                    "[{elapsed}<{remaining}{postfix}]")
        busy, produced = 0.0, 0
        try:
            for start in range(0, len(pending), batch_size):
                batch = pending[start:start + batch_size]
                items = [encoded[jobs[j][0]] for j in batch]
                ind = torch.zeros(len(batch), max(s.codes.size for s in items), dtype=torch.long)
                for row, s in enumerate(items):
                    ind[row, :s.codes.size] = torch.from_numpy(s.codes)
                writers = [_Writer(paths[j], sr) for j in batch]
                pitch = [source_f0(model, s, jobs[j][2], f0, f0_shift) for j, s in zip(batch, items)] if pitched else None
                if pitch is not None and any(p is None for p in pitch):
                    pitch = None  # predicted by the decoder
                try:
                    with contextlib.closing(stream(
                            model, ind, torch.tensor([jobs[j][2] for j in batch]), lengths=[s.samples for s in items],
                            temperature=temperature, seed=[seed + j for j in batch], fast=fast, block=block,
                            precision=precision, pitch=pitch, renderer=renderer,
                            f0_shift=f0_shift if f0 == "predicted" else 0.0)) as blocks:
                        # (closed at once on an interruption: the generator's worker threads end)
                        for b in blocks:
                            busy += b.seconds
                            for j, s, w, y in zip(batch, items, writers, b.audio):
                                if not y.size:
                                    continue
                                w.write(y)
                                produced += y.size
                                if w.level.samples == s.samples:
                                    with _signals_held():  # the file and its entry appear together
                                        w.finish(LoudnessMatch(s.level_db, w.level.db, w.level.peak))
                                        done[j] = Converted(sources[jobs[j][0]], jobs[j][1], paths[j], s.samples / sr)
                                        publish()
                            bar.set_postfix_str(f"RTF {busy * sr / max(produced, 1):.2f}")
                            bar.update(sum(y.size for y in b.audio) / sr)
                finally:
                    for w in writers:
                        w.discard()
        finally:
            bar.close()
        return [done[j] for j in sorted(done)], busy * sr / max(produced, 1)


class LoudnessMatch:
    """Scale an output to a reference RMS level, peak-limited to ±0.999; applied to the whole
    output or block by block alike (the factors come from the whole output's level and peak)."""

    def __init__(self, reference_db: float, output_db: float, output_peak: float):
        self.gain = 10 ** ((reference_db - output_db) / 20)
        # the scaled output's peak, rounded as each scaled sample is (float32 · gain)
        self.peak = float(np.abs(np.float32(output_peak) * np.float32(self.gain)))

    def __call__(self, y: np.ndarray) -> np.ndarray:
        y = y * np.float32(self.gain)
        return (y / np.float32(self.peak) * np.float32(0.999) if self.peak > 1 else y).astype(np.float32)


def match_loudness(y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Scale y to the RMS level of `reference` (peak-limited to ±1)."""
    peak = float(np.abs(y).max()) if y.size else 0.0
    return LoudnessMatch(audio.loudness_db(reference), audio.loudness_db(y), peak)(y)


class _Writer:
    """One output written as it is generated: raw float32 blocks go to a temporary file while
    the level and peak are summed; `finish` rescales them block by block into the audio file
    (temporary name, renamed when complete). Memory: one block."""

    def __init__(self, path: pathlib.Path, sample_rate: int):
        self.path, self.sample_rate = path, sample_rate
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, raw = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".raw.tmp", dir=path.parent)
        fcntl.lockf(fd, fcntl.LOCK_EX)  # while held, `remove_stale` of another run leaves the file alone
        self.raw, self.file = pathlib.Path(raw), os.fdopen(fd, "wb")
        self.level = _Level()

    @staticmethod
    def remove_stale(path: pathlib.Path) -> None:
        """Delete the temporary files of `path` that a killed run left behind (unlocked: no
        live writer; the kernel drops a writer's lock when it dies, even by kill -9)."""
        for raw in path.parent.glob(f".{glob.escape(path.stem)}.*.raw.tmp"):
            try:
                with open(raw, "rb+") as f:
                    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    raw.unlink()
            except OSError:
                pass  # another run is writing it (or it is gone already)

    def write(self, y: np.ndarray) -> None:
        if not np.isfinite(y).all():
            raise AudioVQError(f"{self.path}: refusing to write NaN or Inf samples")
        self.file.write(np.ascontiguousarray(y, dtype=np.float32).tobytes())
        self.level.add(y)

    def finish(self, scale: LoudnessMatch) -> None:
        self.file.close()
        with atomic_path(self.path) as tmp, open(self.raw, "rb") as raw:
            with sf.SoundFile(str(tmp), "w", samplerate=self.sample_rate, channels=1) as f:
                while (y := np.fromfile(raw, np.float32, BLOCK)).size:
                    f.write(np.clip(scale(y), -1.0, 1.0))
        self.discard()

    def discard(self) -> None:
        self.file.close()
        self.raw.unlink(missing_ok=True)


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT/SIGTERM until the block ends, then act on them as usual (a finished file
    and its listing entry appear together, or neither)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old = {s: signal.signal(s, lambda num, _: caught.append(num)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        for num in caught[:1]:
            signal.raise_signal(num)


def utterance_id(path: pathlib.Path) -> str:
    """Corpus file name → utterance id (VCTK 0.92 adds the mic): p225_001_mic1.flac → p225_001."""
    return re.sub(r"_mic\d$", "", path.stem)


def write_conversions(out_dir: pathlib.Path, items: list[Converted], checkpoint: pathlib.Path,
                      source_speakers: dict[str, str | None], settings: dict | None = None) -> pathlib.Path:
    """`conversions.json`: what `audiovq evaluate` reads (and a re-run, to skip finished outputs)."""
    rows = [{"source": str(c.source), "target": c.target, "output": str(c.output),
             "source_speaker": source_speakers.get(str(c.source)),
             "source_utterance": utterance_id(c.source) if source_speakers.get(str(c.source)) else None}
            for c in items]
    path = out_dir / "conversions.json"
    write_text(path, json.dumps({"checkpoint": str(checkpoint), **(settings or {}), "items": rows}, indent=1) + "\n")
    return path


def _finished(folder: pathlib.Path, checkpoint: pathlib.Path, settings: dict) -> set[tuple[str, str, str]]:
    """(source, target, output) of the conversions an earlier run listed in `folder`, when it
    used the same checkpoint and settings (else none)."""
    try:
        listing = json.loads((folder / "conversions.json").read_text())
        if listing.get("checkpoint") != str(checkpoint) or any(listing.get(k) != v for k, v in settings.items()):
            return set()
        return {(i["source"], i["target"], i["output"]) for i in listing["items"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


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
