"""What a listener hears in a waveform: can the words be made out (word error rate, `asr`) and
how good does it sound (DNSMOS, `quality`)? Both need the `eval` extra; without it they are
skipped and say so, the rest of `evaluate` goes on.

A conversion's output is heard beside two references, each heard once per distinct source:
the source itself (at its own rate) and its *representation limit* — the source at the
model's rate passed through what the decoder models (pre-emphasis, µ-law bins) and back, the
best a perfect decoder could output. Output vs limit is what the model loses; limit vs source
what its representation costs.

Reference transcripts: the corpus manifest's text when the source is a corpus utterance, else a
`<source stem>.txt` beside the source file; with neither, WER is not scored for that item.

With a `cache` folder, what was heard is kept on disk under a digest of the exact waveform
the judges receive, the reference text and the judges' versions: hearing one utterance takes
seconds on a CPU, and a benchmark hears the same sources, limits and model-free rows for every
model it scores, so only the conversions are new (both judges are deterministic).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pathlib
from dataclasses import dataclass, field

import numpy as np

from .. import audio
from ..data.manifest import Manifest

KINDS = ("output", "source", "limit")
MOS = ("ovrl", "sig", "bak", "p808")


@dataclass
class Heard:
    """What the listener made of one waveform. None: not measured."""
    wer: float | None = None       # (S + D + I) / N against the reference transcript
    words: int = 0                 # N, reference words (0 when not scored)
    errors: int = 0                # S + D + I
    hypothesis: str | None = None  # what the recogniser heard
    oov: list[str] = field(default_factory=list)  # reference words outside its dictionary
    ovrl: float | None = None      # DNSMOS overall, speech signal, background, P.808 (1–5)
    sig: float | None = None
    bak: float | None = None
    p808: float | None = None


class Listener:
    """ASR + DNSMOS, each present when its packages are; `skipped` says what is not.

    One Listener serves one model: `source` caches the heard source and limit by path.
    `cache`: a folder keeping what was heard across runs (module docstring); None: nothing kept.
    """

    def __init__(self, asr: bool = True, quality: bool = True, cache: str | pathlib.Path | None = None):
        self.recognizer = self.dnsmos = None
        missing = []
        if asr:
            try:
                from .asr import Recognizer
                self.recognizer = Recognizer()
            except ImportError as e:
                missing.append(f"word error rate (needs {e.name or 'pocketsphinx'})")
        if quality:
            try:
                from .quality import DNSMOS
                self.dnsmos = DNSMOS()
            except ImportError as e:
                missing.append(f"DNSMOS (needs {e.name or 'speechmos'})")
        self.skipped = ("listener measures skipped: " + ", ".join(missing) + "; pip install -e '.[eval]'"
                        if missing else None)
        self.seconds = {"asr": [], "dnsmos": []}  # time per utterance, for the report
        self._sources: dict[str, tuple[Heard, Heard]] = {}
        self.cache = pathlib.Path(cache) if cache is not None else None
        self.cache_hits = 0

    @property
    def active(self) -> bool:
        return self.recognizer is not None or self.dnsmos is not None

    def __call__(self, wav: np.ndarray, sample_rate: int, text: str | None) -> Heard:
        """Hear wav (T,) at sample_rate; WER against `text` when given."""
        from .asr import SAMPLE_RATE  # the recogniser's and DNSMOS's rate: resample once for both
        wav, sample_rate = audio.resample(np.asarray(wav, np.float32), sample_rate, SAMPLE_RATE), SAMPLE_RATE
        kept = self._kept(wav, text)
        if kept is not None and kept.is_file():
            try:
                h = Heard(**json.loads(kept.read_text()))
                self.cache_hits += 1
                return h
            except (ValueError, TypeError):  # an unreadable entry (another version's): hear it again
                pass
        h = self._hear(wav, sample_rate, text)
        if kept is not None:
            from ..atomic import write_text
            write_text(kept, json.dumps(dataclasses.asdict(h)))
        return h

    def _kept(self, wav: np.ndarray, text: str | None) -> pathlib.Path | None:
        """The cache entry of this waveform (T,) at 16 kHz and text under these judges."""
        if self.cache is None or not self.active:
            return None
        d = hashlib.sha256()
        for judge in (self.recognizer, self.dnsmos):
            version = getattr(judge, "version", (type(judge).__name__,))
            d.update(repr((version, _package_version(version[0]))).encode())
        d.update((text or "").strip().encode())
        d.update(np.ascontiguousarray(wav, np.float32).tobytes())
        key = d.hexdigest()[:32]
        return self.cache / key[:2] / f"{key}.json"

    def _hear(self, wav: np.ndarray, sample_rate: int, text: str | None) -> Heard:
        h = Heard()
        if self.recognizer is not None and text and text.strip():
            r = self.recognizer(wav, sample_rate, text)
            self.seconds["asr"].append(r.seconds)
            if r.errors.reference:
                h.wer, h.words, h.errors = r.wer, r.errors.reference, r.errors.errors
                h.hypothesis, h.oov = r.hypothesis, list(r.oov)
        if self.dnsmos is not None:
            q = self.dnsmos(wav, sample_rate)
            if q.seconds:
                self.seconds["dnsmos"].append(q.seconds)
            h.ovrl, h.sig, h.bak, h.p808 = (None if math.isnan(v) else v for v in (q.ovrl, q.sig, q.bak, q.p808))
        return h

    def file(self, path: str, text: str | None) -> Heard:
        """Hear an audio file at its own rate (`__call__` resamples it once to the measures' 16 kHz;
        loading at 16 kHz would warn about upsampling an 8 kHz file for no gain)."""
        return self(audio.load(path), audio.info(path).sample_rate, text)

    def source(self, path: str, text: str | None, model, limit_wav: np.ndarray | None = None) -> tuple[Heard, Heard]:
        """(the source heard, its representation limit heard), once per path. `limit_wav` (T,):
        the limit at the model's rate when the caller has it already."""
        if path not in self._sources:
            src = self.file(path, text)
            limit_fn = getattr(model, "representation_limit", None)
            if limit_wav is not None:
                limit = self(limit_wav, model.sample_rate, text)
            elif limit_fn is not None:
                x = audio.load(path, model.sample_rate)
                limit = self(limit_fn(x), model.sample_rate, text)
            else:  # a model without one (older code): not scored
                limit = Heard()
            self._sources[path] = (src, limit)
        return self._sources[path]


def _package_version(name: str) -> str | None:
    """The installed version of a judge's package (None for a judge that is not one)."""
    from importlib import metadata
    try:
        return metadata.version(name)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def transcript(source: str, utterance: str | None, texts: dict[str, str]) -> str | None:
    """The words said in a source: `texts[utterance]` (the manifest's text of a corpus
    utterance), else `<stem>.txt` beside the file, else the VCTK layout's
    `<root>/txt/<speaker>/<utterance>.txt` for a file under `<root>/<audio dir>/<speaker>/`;
    None when none exists (or is empty)."""
    from ..convert import utterance_id

    if utterance and texts.get(utterance, "").strip():
        return texts[utterance]
    path = pathlib.Path(source)
    candidates = [path.with_suffix(".txt")]
    if len(path.parents) >= 3:
        candidates.append(path.parents[2] / "txt" / path.parent.name / f"{utterance_id(path)}.txt")
    for side in candidates:
        if side.is_file():
            return side.read_text(encoding="utf-8", errors="replace").strip() or None
    return None


def manifest_texts(manifest: Manifest | None) -> dict[str, str]:
    """Utterance id → its transcript ("" when the corpus has none)."""
    return {u.id: u.text for u in manifest.utterances} if manifest is not None else {}


def summarize(items: list[dict]) -> dict:
    """Listener figures of report items (dicts with "source" and "heard"): WER (all errors / all
    reference words, i.e. pooled, not a mean of ratios) and mean DNSMOS of the outputs, and of
    each distinct source and its representation limit. NaN where nothing was measured."""
    per_source = {i["source"]: i.get("heard") or {} for i in items}
    groups = {"output": [(i.get("heard") or {}).get("output") for i in items],
              "source": [h.get("source") for h in per_source.values()],
              "limit": [h.get("limit") for h in per_source.values()]}
    out: dict = {}
    for kind, heard in groups.items():
        heard = [h for h in heard if h]
        scored = [h for h in heard if h["wer"] is not None]
        n = sum(h["words"] for h in scored)
        out[f"wer_{kind}"] = sum(h["errors"] for h in scored) / n if n else float("nan")
        for k in MOS:
            vals = [h[k] for h in heard if h[k] is not None]
            out[f"dnsmos_{k}_{kind}"] = float(np.mean(vals)) if vals else float("nan")
    outputs = [(i.get("heard") or {}).get("output") or {} for i in items]
    out["wer_scored"] = sum(h.get("wer") is not None for h in outputs)
    out["wer_unscored"] = len(items) - out["wer_scored"]
    out["oov_words"] = sorted({w for h in outputs for w in h.get("oov", [])})
    return out
