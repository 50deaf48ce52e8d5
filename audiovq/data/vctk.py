"""Prepare the VCTK corpus (0.92 or 0.80 layout) into a manifest of trimmed, resampled WAVs.

    0.92: ROOT/wav48_silence_trimmed/p225/p225_001_mic1.flac, ROOT/txt/p225/p225_001.txt,
          ROOT/speaker-info.txt ("p225  23  F  English  Southern  England", COMMENTS column)
    0.80: ROOT/wav48/p225/p225_001.wav, ROOT/txt/..., ROOT/speaker-info.txt ("225  23  F ...")

Each file is loaded, resampled once to the model rate, trimmed of leading and trailing
silence and written as OUT/wav/<spk>/<utt>.wav (PCM_16); training never resamples on the
fly. Defects of the real corpus (p315 has no transcripts, p280 has no mic2, unreadable or
missing files) are counted and logged, not fatal. Work is resumable: a journal of finished
files lets a re-run skip them, and the manifest is written last, so an interrupted run
never leaves a manifest naming files that do not exist.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import pathlib
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator, NamedTuple

from tqdm import tqdm

from .. import audio
from ..atomic import write_text
from ..errors import AudioError, AudioVQError, ConfigError
from .manifest import Manifest, Speaker, Utterance

log = logging.getLogger(__name__)

JOURNAL = ".prepare-journal.jsonl"  # one line per finished file: lets a re-run skip it
TRIM_VERSION = 1                    # bump when the trimming recipe changes, to redo every file
TRIM_MARGIN = 0.02                  # seconds of context kept beyond the detected speech
MICS = ("mic1", "mic2")
MAX_LOGGED = 20                     # per-file skip warnings logged individually before summarising


class Layout(NamedTuple):
    version: str             # "0.92" | "0.80"
    audio_dir: pathlib.Path  # wav48_silence_trimmed/ or wav48/


def detect_layout(root: str | os.PathLike) -> Layout:
    """Which VCTK release `root` holds, by its audio folder; AudioVQError if neither."""
    root = pathlib.Path(root)
    expected = ("expected wav48_silence_trimmed/ (VCTK 0.92) or wav48/ (VCTK 0.80) "
                "next to txt/ and speaker-info.txt")
    if not root.is_dir():
        raise AudioVQError(f"{root}: no such corpus directory ({expected})")
    for version, name in (("0.92", "wav48_silence_trimmed"), ("0.80", "wav48")):
        if (root / name).is_dir():
            return Layout(version, root / name)
    raise AudioVQError(f"{root}: not a VCTK corpus ({expected})")


def speaker_key(speaker_id: str) -> tuple[str, int, str]:
    """Sort key for "p225" < "p376" < "s5" (letters, then the number)."""
    m = re.fullmatch(r"([A-Za-z]*)(\d*)(.*)", speaker_id)
    return (m[1], int(m[2]) if m[2] else -1, m[3])


class SpeakerInfo(NamedTuple):
    gender: str
    age: int | None
    accent: str
    region: str


def parse_speaker_info(text: str) -> dict[str, SpeakerInfo]:
    """Parse speaker-info.txt of either release into {"p225": SpeakerInfo}.

    Columns are whitespace-separated (ID AGE GENDER ACCENTS REGION [COMMENTS]); the region
    may be several words or absent, 0.92 appends parenthesised comments, 0.80 omits the "p"
    of the IDs and some copies spell the gender "female"/"male". Unparseable rows are skipped.
    """
    out: dict[str, SpeakerInfo] = {}
    for line in text.splitlines():
        line = re.sub(r"\(.*?\)", " ", line).strip()  # comments like "(mic2 files unavailable)"
        tokens = line.split()
        if len(tokens) < 2 or tokens[0].upper() == "ID":
            continue
        sid = tokens[0]
        if sid.isdigit():
            sid = "p" + sid
        age, gender, rest = None, "", tokens[1:]
        for _ in range(2):  # AGE and GENDER, in whichever order the file has them
            if rest and rest[0].isdigit() and age is None:
                age, rest = int(rest[0]), rest[1:]
            elif rest and rest[0].upper() in ("F", "M", "FEMALE", "MALE") and not gender:
                gender, rest = rest[0][0].upper(), rest[1:]
        if age is None and not gender:
            continue
        out[sid] = SpeakerInfo(gender, age, rest[0] if rest else "", " ".join(rest[1:]))
    return out


@dataclass
class PrepareSummary:
    prepared: int                 # files processed by this run
    already_prepared: int         # files skipped because a previous run finished them
    skipped: dict[str, int]       # reason ("unreadable", "missing", "silent") → count
    speakers: int
    hours: float                  # total audio in the manifest, after trimming
    elapsed: float                # seconds
    manifest: pathlib.Path
    no_text: int = 0              # utterances kept with an empty transcript (p315)
    warnings: list[str] = field(default_factory=list)  # one line per skipped file

    @property
    def utterances(self) -> int:
        return self.prepared + self.already_prepared

    def __str__(self) -> str:
        skipped = ", ".join(f"{self.skipped.get(k, 0)} {k}" for k in ("unreadable", "missing", "silent"))
        return (f"prepared {self.utterances} utterances ({self.hours:.2f} h) from {self.speakers} speakers "
                f"({self.prepared} new, {self.already_prepared} already done); skipped {skipped}; "
                f"{self.elapsed:.1f} s")


class _Task(NamedTuple):
    utt_id: str
    source: str   # absolute
    out: str      # OUT/wav/<spk>/<utt>.wav
    sample_rate: int
    top_db: float


class _Result(NamedTuple):
    utt_id: str
    status: str          # "ok" | "unreadable" | "silent"
    num_samples: int
    trim_start: float
    message: str


class _Planned(NamedTuple):
    utt_id: str
    speaker: str
    source: pathlib.Path
    text: str


def prepare(root: str | os.PathLike, out_dir: str | os.PathLike, sample_rate: int = 16000,
            mic: str = "mic1", workers: int = 2, top_db: float = 30.0,
            heldout_speakers: int | None = None, val_fraction: float = 0.05,
            progress: bool = True) -> PrepareSummary:
    """Prepare VCTK at `root` into `out_dir` (OUT/wav/<spk>/<utt>.wav + OUT/manifest.json).

    `mic` picks the 0.92 microphone; `top_db` is the trimming threshold below the loudest
    frame; the last `heldout_speakers` speakers in ID order are held out (default 5 %, at
    least 1), and `val_fraction` of each training speaker's utterances (at least 1) go to
    val by a hash of the utterance id. Re-running skips finished files.
    """
    t0 = time.monotonic()
    root, out_dir = pathlib.Path(root).expanduser().resolve(), pathlib.Path(out_dir).expanduser()
    _check_args(sample_rate, mic, workers, top_db, heldout_speakers, val_fraction)
    layout = detect_layout(root)
    if layout.version == "0.80" and mic != "mic1":
        raise ConfigError(f"{root}: VCTK 0.80 has a single microphone; mic={mic!r} needs VCTK 0.92")
    out_abs = out_dir.resolve()
    if out_abs == root or out_abs == layout.audio_dir or layout.audio_dir in out_abs.parents:
        raise ConfigError(f"{out_dir}: the output dir must not be the corpus or inside its audio folder")

    info = _read_speaker_info(root)
    planned, missing, notes = _plan(root, layout, mic)
    n_speakers = len({p.speaker for p in planned})
    if not planned:
        which = f"*_{mic}.flac" if layout.version == "0.92" else "*.wav"
        raise AudioVQError(f"{layout.audio_dir}: no <speaker>/{which} audio files found")
    if heldout_speakers is not None and heldout_speakers >= n_speakers:
        raise ConfigError(f"heldout_speakers={heldout_speakers}: the corpus has only {n_speakers} speakers")
    settings = {"sample_rate": sample_rate, "top_db": float(top_db), "trim": TRIM_VERSION}
    journal = _Journal(out_dir / JOURNAL)
    done: dict[str, _Result] = {}       # utt id → finished result (ok)
    failed: list[_Result] = []          # from the journal or from this run
    todo: list[_Task] = []
    for p in planned:
        task = _Task(p.utt_id, str(p.source), str(out_dir / "wav" / p.speaker / f"{p.utt_id}.wav"),
                     sample_rate, float(top_db))
        hit = journal.lookup(task, settings)
        if hit is None:
            todo.append(task)
        elif hit.status == "ok":
            done[p.utt_id] = hit
        else:
            failed.append(hit)
    already = len(done)
    todo_by_id = {t.utt_id: t for t in todo}

    out_dir.mkdir(parents=True, exist_ok=True)
    if todo:  # files are about to change: a stale manifest must not outlive an interrupted run
        (out_dir / "manifest.json").unlink(missing_ok=True)
    with journal.appending():
        for r in _run(todo, workers, progress):
            journal.record(r, todo_by_id[r.utt_id], settings)
            if r.status == "ok":
                done[r.utt_id] = r
            else:
                failed.append(r)

    failed.sort(key=lambda r: r.utt_id)
    skipped = Counter(r.status for r in failed)
    skipped["missing"] += missing
    warn_lines = notes + [f"{r.utt_id}: skipped, {r.message}" for r in failed]
    for line in warn_lines[:MAX_LOGGED]:
        log.warning(line)
    if len(warn_lines) > MAX_LOGGED:
        log.warning("... and %d more skipped files or speakers", len(warn_lines) - MAX_LOGGED)

    if not done:
        raise AudioVQError(f"{root}: no usable audio (skipped {', '.join(f'{v} {k}' for k, v in skipped.items())})")
    manifest = _build_manifest(root, out_dir, layout, mic, sample_rate, top_db, planned, done, info,
                               heldout_speakers, val_fraction)
    path = manifest.save()  # last: only now does the prepared dir claim its files
    journal.compact(p.utt_id for p in planned)
    summary = PrepareSummary(
        prepared=len(done) - already, already_prepared=already,
        skipped={k: skipped.get(k, 0) for k in ("unreadable", "missing", "silent")},
        speakers=len(manifest.speakers), hours=sum(u.duration for u in manifest.utterances) / 3600,
        elapsed=time.monotonic() - t0, manifest=path,
        no_text=sum(1 for u in manifest.utterances if not u.text), warnings=warn_lines)
    log.info("%s", summary)
    return summary


def _check_args(sample_rate, mic, workers, top_db, heldout_speakers, val_fraction) -> None:
    if not isinstance(sample_rate, int) or sample_rate < 1000:
        raise ConfigError(f"sample_rate={sample_rate!r}: expected an integer rate in Hz (e.g. 16000)")
    if mic not in MICS:
        raise ConfigError(f"mic={mic!r}: expected one of {', '.join(MICS)}")
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers={workers!r}: expected an integer >= 1")
    if not top_db > 0:
        raise ConfigError(f"top_db={top_db!r}: expected a positive number of dB")
    if heldout_speakers is not None and (not isinstance(heldout_speakers, int) or heldout_speakers < 0):
        raise ConfigError(f"heldout_speakers={heldout_speakers!r}: expected an integer >= 0")
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction={val_fraction!r}: expected a fraction in [0, 1)")


def _read_speaker_info(root: pathlib.Path) -> dict[str, SpeakerInfo]:
    path = root / "speaker-info.txt"
    if not path.is_file():
        log.warning("%s: missing; speakers get empty gender/age/accent", path)
        return {}
    return parse_speaker_info(path.read_text(encoding="utf-8", errors="replace"))


def _plan(root: pathlib.Path, layout: Layout, mic: str) -> tuple[list[_Planned], int, list[str]]:
    """Utterances to prepare (one per audio file of the chosen mic), the number of transcripts
    with no audio ("missing"), and notes about whole speakers to log."""
    if layout.version == "0.92":
        pattern = re.compile(rf"((?:[a-z]+\d+)_\d+)_{mic}\.flac")
    else:
        pattern = re.compile(r"((?:[a-z]+\d+)_\d+)\.wav")
    audio_speakers = {d.name for d in layout.audio_dir.iterdir() if d.is_dir()}
    txt_dir = root / "txt"
    txt_speakers = {d.name for d in txt_dir.iterdir() if d.is_dir()} if txt_dir.is_dir() else set()
    planned, missing, notes = [], 0, []
    for spk in sorted(audio_speakers | txt_speakers, key=speaker_key):
        files = {}
        if spk in audio_speakers:
            for f in (layout.audio_dir / spk).iterdir():
                m = pattern.fullmatch(f.name)
                if m and m[1].startswith(spk + "_"):
                    files[m[1]] = f
        texts = {f.stem: f for f in (txt_dir / spk).glob(f"{spk}_*.txt")} if spk in txt_speakers else {}
        gap = sorted(set(texts) - set(files))
        missing += len(gap)
        if not files:
            what = f"no {mic} recordings" if layout.version == "0.92" else "no recordings"
            notes.append(f"{spk}: {what}; skipped speaker ({len(gap)} transcripts)")
            continue
        if gap:
            notes.append(f"{spk}: {len(gap)} transcripts have no {mic} audio ({', '.join(gap[:3])}"
                         f"{', ...' if len(gap) > 3 else ''}); skipped")
        if not texts:
            notes.append(f"{spk}: no transcripts; keeping the audio with empty text")
        for utt in sorted(files):
            text = texts[utt].read_text(encoding="utf-8", errors="replace").strip() if utt in texts else ""
            planned.append(_Planned(utt, spk, files[utt], text))
    return planned, missing, notes


def _run(tasks: list[_Task], workers: int, progress: bool) -> Iterator[_Result]:
    """Process tasks in a pool of `workers` processes (in this process when 1), with a bar."""
    def bar():
        return tqdm(total=len(tasks), unit="file", desc="prepare VCTK", disable=not progress or not tasks)

    if workers == 1 or len(tasks) < 2:
        with bar() as b:
            for t in tasks:
                yield _prepare_one(t)
                b.update()
        return
    # the pool forks before the bar starts its monitor thread
    with multiprocessing.get_context().Pool(min(workers, len(tasks))) as pool, bar() as b:
        for r in pool.imap_unordered(_prepare_one, tasks, chunksize=4):
            yield r
            b.update()


def _prepare_one(t: _Task) -> _Result:
    """Load, resample, trim and write one file (runs in a worker process)."""
    try:
        x = audio.load(t.source, t.sample_rate)
    except AudioError as e:
        return _Result(t.utt_id, "unreadable", 0, 0.0, str(e))
    if audio.is_silent(x):
        return _Result(t.utt_id, "silent", 0, 0.0, f"{t.source}: audio is silent")
    frame = max(64, int(0.032 * t.sample_rate))  # 32 ms frames, 8 ms hop, at any rate
    trimmed = audio.trim_silence(x, t.top_db, frame_length=frame, hop_length=frame // 4,
                                 margin=int(TRIM_MARGIN * t.sample_rate))
    audio.save(t.out, trimmed.audio, t.sample_rate, subtype="PCM_16")
    return _Result(t.utt_id, "ok", int(trimmed.audio.size), trimmed.start / t.sample_rate, "")


class _Journal:
    """Append-only record of finished files, ok or failed:
    {id, status, message, source, size, mtime_ns, settings, out_bytes, num_samples, trim_start}.

    A line is appended only after its output file has been renamed into place, so an "ok"
    line always means a complete file; a torn last line (killed mid-write) is ignored. An
    entry counts only while the source file (size, mtime), the settings and the output
    size are unchanged; failed files are remembered too, so a re-run does not retry them.
    """

    def __init__(self, path: pathlib.Path):
        self.path = path
        self.entries: dict[str, dict] = {}
        self._fh = None
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                try:
                    e = json.loads(line)
                    self.entries[e["id"]] = e
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue

    def lookup(self, task: _Task, settings: dict) -> _Result | None:
        e = self.entries.get(task.utt_id)
        if e is None or e.get("settings") != settings or e.get("source") != task.source:
            return None
        try:
            st = os.stat(task.source)
            out_bytes = os.stat(task.out).st_size if e.get("status") == "ok" else None
        except OSError:
            return None
        if (e.get("size"), e.get("mtime_ns"), e.get("out_bytes")) != (st.st_size, st.st_mtime_ns, out_bytes):
            return None
        try:
            return _Result(task.utt_id, e["status"], int(e["num_samples"]), float(e["trim_start"]),
                           str(e["message"]))
        except (KeyError, TypeError, ValueError):
            return None

    @contextlib.contextmanager
    def appending(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as self._fh:
            yield
        self._fh = None

    def record(self, r: _Result, task: _Task, settings: dict) -> None:
        try:
            st = os.stat(task.source)
        except OSError:  # vanished while we worked: nothing to remember
            return
        e = {"id": r.utt_id, "status": r.status, "message": r.message, "source": task.source,
             "size": st.st_size, "mtime_ns": st.st_mtime_ns, "settings": settings,
             "out_bytes": os.stat(task.out).st_size if r.status == "ok" else None,
             "num_samples": r.num_samples, "trim_start": r.trim_start}
        self.entries[r.utt_id] = e
        self._fh.write(json.dumps(e) + "\n")
        self._fh.flush()

    def compact(self, keep: Iterable[str]) -> None:
        """Rewrite with one line per utterance still in the corpus."""
        lines = [json.dumps(self.entries[k]) for k in sorted(keep) if k in self.entries]
        write_text(self.path, "".join(line + "\n" for line in lines))


def _build_manifest(root, out_dir, layout, mic, sample_rate, top_db, planned, done, info,
                    heldout_speakers, val_fraction) -> Manifest:
    kept = [p for p in planned if p.utt_id in done]
    speaker_ids = sorted({p.speaker for p in kept}, key=speaker_key)
    n = len(speaker_ids)
    if heldout_speakers is None:
        # 5 % of speakers, at least one, but never all: the first speakers (p225) always train
        n_heldout = min(max(1, round(0.05 * n)), max(n - 1, 0))
    else:  # speakers whose every file failed are gone; keep at least one training speaker
        n_heldout = min(heldout_speakers, max(n - 1, 0))
    heldout = set(speaker_ids[n - n_heldout:]) if n_heldout else set()

    speakers = []
    for sid in speaker_ids:
        i = info.get(sid, SpeakerInfo("", None, "", ""))
        speakers.append(Speaker(sid, i.gender, i.age, i.accent, i.region,
                                "heldout" if sid in heldout else "train"))

    val = _val_utterances([p for p in kept if p.speaker not in heldout], val_fraction)
    utterances = []
    for p in kept:
        r = done[p.utt_id]
        split = "test" if p.speaker in heldout else "val" if p.utt_id in val else "train"
        utterances.append(Utterance(
            id=p.utt_id, speaker=p.speaker, path=f"wav/{p.speaker}/{p.utt_id}.wav",
            num_samples=r.num_samples, duration=r.num_samples / sample_rate, text=p.text, split=split,
            trim_start=r.trim_start, source=p.source.relative_to(root).as_posix()))
    meta = {"corpus": f"VCTK-{layout.version}", "mic": mic if layout.version == "0.92" else "",
            "top_db": float(top_db), "trim_margin": TRIM_MARGIN, "heldout_speakers": n_heldout,
            "val_fraction": val_fraction}
    return Manifest(out_dir, sample_rate, speakers, utterances, str(root), meta)


def utterance_hash(utt_id: str) -> float:
    """A fixed pseudo-random number in [0, 1) per utterance id (sha1-based, stable across runs)."""
    return int(hashlib.sha1(utt_id.encode()).hexdigest()[:12], 16) / 16 ** 12


def _val_utterances(planned: list[_Planned], val_fraction: float) -> set[str]:
    """Ids whose hash falls below `val_fraction`, plus, for a speaker with none, its
    lowest-hash utterance (only if it has another one left to train on)."""
    by_speaker: dict[str, list[str]] = {}
    for p in planned:
        by_speaker.setdefault(p.speaker, []).append(p.utt_id)
    val = set()
    for ids in by_speaker.values():
        chosen = {u for u in ids if utterance_hash(u) < val_fraction}
        if not chosen and len(ids) > 1:
            chosen = {min(ids, key=utterance_hash)}
        if len(chosen) == len(ids) and len(ids) > 1:  # keep at least one to train on
            chosen.discard(max(chosen, key=utterance_hash))
        val |= chosen
    return val
