"""The conversion list `audiovq convert` writes, and scoring each conversion in it."""
from __future__ import annotations

import json
import os
import pathlib
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .. import audio
from ..analysis import labels, metrics
from ..data.alignments import read_textgrid
from ..data.manifest import Manifest
from ..errors import AudioVQError
from .closer import annotate, closer_by_kind, speaker_genders
from .listener import Heard, Listener, manifest_texts, summarize, transcript
from .signal import median_f0, mel_dtw_distance
from .speaker import SpeakerEmbedder, SpeakerProfile, pitch_closer, reference_files


@dataclass
class Conversion:
    source: str                      # source audio file
    target: str                      # target speaker id
    output: str                      # converted audio file
    source_speaker: str | None = None
    source_utterance: str | None = None  # manifest id, when the source is a corpus utterance


@dataclass
class Score:
    output: str
    target: str
    source_speaker: str | None
    sim_target: float         # cosine(output, target references)
    sim_source: float         # cosine(output, source-speaker references)
    closer_to_target: bool
    code_agreement: float     # share of frames whose re-encoded code equals the source's
    mel_distance: float       # mean log-mel L2 distance along the DTW path (dB-scaled mels)
    loudness_diff_db: float   # output RMS level − source RMS level
    f0_output: float          # median F0 (Hz) of the output's voiced frames
    f0_target: float          # … of the target speaker's references
    f0_source: float          # … of the source speaker's references
    source: str | None = None  # source audio file
    # what a listener hears (listener.py): "output", "source" and "limit" (its representation
    # limit); the last two are the same for every conversion of one source
    heard: dict[str, Heard] = field(default_factory=dict)
    limit_audio: str | None = None  # the source's representation limit as a wav, when written
    text: str | None = None         # the words said in the source (listener.transcript), when known


def read_conversions(path: str | os.PathLike) -> list[Conversion]:
    """The `conversions.json` that `audiovq convert` writes (or its folder)."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "conversions.json"
    if not path.is_file():
        raise AudioVQError(f"{path}: no conversions list (run `audiovq convert … --out DIR` first)")
    try:
        items = json.loads(path.read_text())["items"]
        return [Conversion(**{k: v for k, v in i.items() if k in Conversion.__dataclass_fields__}) for i in items]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise AudioVQError(f"{path}: not a conversions list ({type(e).__name__})") from None


def _pitch_closer(s: Score) -> bool | None:
    return pitch_closer(s.f0_output, s.f0_target, s.f0_source)


@torch.no_grad()
def evaluate(model, conversions: list[Conversion], manifest: Manifest | None = None,
             alignments: str | os.PathLike | None = None, progress: bool = True,
             listener: Listener | None = None, limit_dir: str | os.PathLike | None = None,
             speakers: list[dict] | None = None) -> dict:
    """Score each conversion; returns {"items": [Score as dict…], "summary": {…},
    "references": {speaker: [reference audio files]}, "failed": [{output, target, source, error}]}.

    A conversion whose audio cannot be used (missing or unreadable source or output, a target
    without references) is not scored: it goes to "failed" with the one-line reason, and the
    rest are scored. `listener` (default: a new one) hears outputs, sources and representation
    limits; pass one to share its per-source cache between calls on the same model, or
    `Listener(False, False)` to skip listening. `limit_dir`: write each source's
    representation limit there as a wav (`Score.limit_audio`), for a listener to hear.

    `speakers`: the model's speaker table (LoadedVQVAE.speakers: dicts with "id", "gender").
    With it each item says whether its source speaker is one the model trained on
    ("source_seen"; a source of unknown speaker is unseen) and its "gender_pairing", and
    summary["closer"] holds the closer-to-target share by kind of pair with bootstrap
    intervals, the unseen sources first (closer.py); without it seen/unseen is not told apart.
    """
    sr = model.sample_rate
    embed = SpeakerEmbedder()
    listener = Listener() if listener is None else listener
    texts = manifest_texts(manifest)
    scores, failed, phone_pairs = [], [], {"out": [], "src": [], "phones": []}
    sources = {c.source_utterance for c in conversions if c.source_utterance}  # never a reference
    profiles: dict[str, SpeakerProfile] = {}  # references are read and embedded once per speaker
    reference_paths: dict[str, list[str]] = {}
    limits: dict[str, tuple[np.ndarray, str | None]] = {}  # source → its representation limit, file

    def profile(key: str, speaker: str | None, fallback: list[np.ndarray]) -> SpeakerProfile:
        if key not in profiles:
            paths = reference_files(manifest, speaker, sources)
            refs = [audio.load(p, sr) for p in paths] or fallback
            if not refs:
                raise AudioVQError(f"no reference utterances of target speaker {speaker!r} in the corpus")
            if paths:
                reference_paths[speaker] = paths
            profiles[key] = SpeakerProfile(embed.mean(refs, sr), float(np.nanmedian([median_f0(w, sr) for w in refs])))
        return profiles[key]

    def limit(c: Conversion, src: np.ndarray) -> tuple[np.ndarray | None, str | None]:
        limit_fn = getattr(model, "representation_limit", None)
        if limit_fn is None or not (listener.active or limit_dir is not None):
            return None, None
        if c.source not in limits:
            wav, path = limit_fn(src), None
            if limit_dir is not None:
                path = pathlib.Path(limit_dir) / f"{len(limits):04d}_{pathlib.Path(c.source).stem}.wav"
                audio.save(path, wav, sr)
            limits[c.source] = wav, None if path is None else str(path)
        return limits[c.source]

    for c in conversions:
        try:
            src, out = audio.load(c.source, sr), audio.load(c.output, sr)
            tgt = profile(c.target, c.target, [])
            src_p = profile(c.source_speaker or c.source, c.source_speaker, [src])  # unknown speaker: the source itself
        except AudioVQError as e:
            failed.append({"output": c.output, "target": c.target, "source": c.source,
                           "source_speaker": c.source_speaker, "error": str(e)})
            continue
        e_out = embed(out, sr)
        e_out /= np.linalg.norm(e_out)
        e_tgt, e_src = tgt.embedding, src_p.embedding
        codes_src = model.encode(torch.from_numpy(src)[None])[0].numpy()
        codes_out = model.encode(torch.from_numpy(out)[None])[0].numpy()
        n = min(codes_src.size, codes_out.size)
        limit_wav, limit_file = limit(c, src)
        heard = {}
        text = transcript(c.source, c.source_utterance, texts)
        if listener.active:
            heard["output"] = listener.file(c.output, text)
            heard["source"], heard["limit"] = listener.source(c.source, text, model, limit_wav)
        scores.append(Score(c.output, c.target, c.source_speaker, float(e_out @ e_tgt), float(e_out @ e_src),
                            bool(e_out @ e_tgt > e_out @ e_src), float(np.mean(codes_src[:n] == codes_out[:n])),
                            mel_dtw_distance(out, src, sr), audio.loudness_db(out) - audio.loudness_db(src),
                            median_f0(out, sr), tgt.f0, src_p.f0, c.source, heard, limit_file, text))
        if alignments and manifest and c.source_utterance:
            _collect_phones(phone_pairs, manifest, pathlib.Path(alignments), c.source_utterance,
                            codes_src[:n], codes_out[:n], model.code_rate)
    items = [asdict(s) for s in scores]
    annotate(items, None if speakers is None else {s["id"] for s in speakers}, speaker_genders(manifest, speakers))
    summary = {
        "conversions": len(scores),
        "closer_to_target": _mean([s.closer_to_target for s in scores]),
        "sim_target": _mean([s.sim_target for s in scores]),
        "sim_source": _mean([s.sim_source for s in scores]),
        "code_agreement": _mean([s.code_agreement for s in scores]),
        "mel_distance": _mean([s.mel_distance for s in scores]),
        "loudness_diff_db": _mean([s.loudness_diff_db for s in scores]),
    }
    summary["closer"] = closer_by_kind(items)
    pitch = [v for v in map(_pitch_closer, scores) if v is not None]
    summary["pitch_pairs"] = len(pitch)
    summary["pitch_closer_to_target"] = _mean(pitch)
    if phone_pairs["phones"]:
        phones = labels.encode_phones(np.concatenate(phone_pairs["phones"])).ids
        summary["phone_purity_output"] = metrics.cluster_quality(np.concatenate(phone_pairs["out"]), phones).phone_purity
        summary["phone_purity_source"] = metrics.cluster_quality(np.concatenate(phone_pairs["src"]), phones).phone_purity
    if listener.active:
        summary.update(summarize(items))
        summary["listener_seconds"] = {k: float(np.mean(v)) if v else None for k, v in listener.seconds.items()}
    if listener.skipped:
        summary["listener_skipped"] = listener.skipped
    if failed:
        summary["failed"] = len(failed)
    return {"items": items, "summary": summary, "references": reference_paths, "failed": failed}


def _mean(values: list) -> float:
    """The mean, NaN for none (every conversion may have failed)."""
    return float(np.mean(values)) if values else float("nan")


def _collect_phones(acc, manifest, alignments, utt_id, codes_src, codes_out, code_rate):
    utt = next((u for u in manifest.utterances if u.id == utt_id), None)
    if utt is None:
        return
    for p in (alignments / utt.speaker / f"{utt.id}.TextGrid", alignments / f"{utt.id}.TextGrid"):
        if p.is_file():
            tier = labels.normalize_intervals(labels.phone_tier(read_textgrid(p), str(p)))
            lab = labels.frame_labels(tier, codes_src.size, code_rate, offset=utt.trim_start)
            keep = lab.inside
            acc["out"].append(codes_out[keep])
            acc["src"].append(codes_src[keep])
            acc["phones"].append(lab.labels[keep])
            return
