"""`audiovq evaluate`: how good are conversions? For each (source, target speaker, output):

- speaker similarity — cosine between GE2E speaker embeddings (resemblyzer, weights shipped
  in its wheel) of the output and of reference utterances of the target and of the source
  speaker; a conversion "lands" when it is closer to the target;
- content — the output re-encoded by the same model keeps the source's codes (frame
  agreement), and, where alignments exist, its codes' phone purity against the source phones;
- pitch — median F0 of the output against the target's and the source speaker's reference
  median F0 (pitch is the plainest speaker cue, and needs no neural model to judge);
- signal — log-mel distance to the source after DTW, and the loudness difference.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch

from . import audio
from .analysis import labels, metrics
from .atomic import write_text
from .data.alignments import read_textgrid
from .data.manifest import Manifest
from .errors import AudioVQError

REFERENCES = 5  # reference utterances per speaker
PITCH_APART = 2.0  # semitones: pairs whose speakers' median F0 differ less are not scored on pitch


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


class SpeakerEmbedder:
    """GE2E d-vectors via resemblyzer (optional dependency: the `eval` extra)."""

    def __init__(self):
        try:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from resemblyzer import VoiceEncoder, preprocess_wav
        except ImportError:
            raise AudioVQError("speaker similarity needs resemblyzer: pip install -e '.[eval]'") from None
        self.encoder, self.preprocess = VoiceEncoder("cpu", verbose=False), preprocess_wav

    def __call__(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        x = self.preprocess(audio.resample(wav, sample_rate, 16000), 16000)
        if x.size < 1600:  # the VAD removed nearly everything: embed the raw audio
            x = audio.resample(wav, sample_rate, 16000)
        return self.encoder.embed_utterance(x)

    def mean(self, wavs: list[np.ndarray], sample_rate: int) -> np.ndarray:
        """Unit-norm mean d-vector of several utterances of one speaker."""
        e = np.mean([self(w, sample_rate) for w in wavs], axis=0)
        return e / np.linalg.norm(e)


class SpeakerProfile(NamedTuple):
    embedding: np.ndarray  # unit-norm mean d-vector of the speaker's reference utterances
    f0: float              # median over those references of their median F0 (Hz)


def median_f0(wav: np.ndarray, sample_rate: int) -> float:
    """Median F0 (Hz, YIN, 60–450 Hz) over the frames within 10 dB of the loudest; NaN if none."""
    import librosa
    hop, frame = sample_rate // 64, sample_rate // 8  # 16 ms / 125 ms: two periods of 60 Hz in a frame
    if wav.size < frame:
        return float("nan")
    f0 = librosa.yin(wav, fmin=60, fmax=450, sr=sample_rate, frame_length=frame, hop_length=hop)
    rms = librosa.feature.rms(y=wav, frame_length=frame, hop_length=hop)[0][: f0.size]
    voiced = f0[rms > rms.max() * 10 ** (-10 / 20)]
    return float(np.median(voiced)) if voiced.size else float("nan")


def _pitch_closer(s: "Score") -> bool | None:
    """Is the output's median F0 nearer (in semitones) the target's than the source's? None when
    the two speakers' F0 are too close to tell apart."""
    f = np.array([s.f0_output, s.f0_target, s.f0_source])
    if not np.isfinite(f).all() or abs(12 * np.log2(f[1] / f[2])) < PITCH_APART:
        return None
    return bool(abs(np.log2(f[0] / f[1])) < abs(np.log2(f[0] / f[2])))


def mel_dtw_distance(a: np.ndarray, b: np.ndarray, sample_rate: int) -> float:
    """Mean Euclidean distance between 80-band log-mel frames (dB) along the DTW path."""
    import librosa
    def logmel(x):
        m = librosa.feature.melspectrogram(y=x, sr=sample_rate, n_fft=1024, hop_length=256, n_mels=80)
        return librosa.power_to_db(m, ref=1.0, amin=1e-10, top_db=None)
    A, B = logmel(a), logmel(b)
    D, path = librosa.sequence.dtw(X=A, Y=B, metric="euclidean")
    return float(D[-1, -1] / len(path))


def _references(manifest: Manifest | None, speaker: str | None, exclude: set[str], sr: int) -> list[np.ndarray]:
    if manifest is None or speaker is None:
        return []
    utts = [u for u in manifest.utterances if u.speaker == speaker and u.id not in exclude]
    utts = sorted(utts, key=lambda u: (u.split != "train", u.id))[:REFERENCES]
    return [audio.load(manifest.audio_path(u), sr) for u in utts]


@torch.no_grad()
def evaluate(model, conversions: list[Conversion], manifest: Manifest | None = None,
             alignments: str | os.PathLike | None = None, progress: bool = True) -> dict:
    """Score each conversion; returns {"items": [Score…], "summary": {…}}."""
    sr = model.sample_rate
    embed = SpeakerEmbedder()
    scores, phone_pairs = [], {"out": [], "src": [], "phones": []}
    sources = {c.source_utterance for c in conversions if c.source_utterance}  # never a reference
    profiles: dict[str, SpeakerProfile] = {}  # references are read and embedded once per speaker

    def profile(key: str, speaker: str | None, fallback: list[np.ndarray]) -> SpeakerProfile:
        if key not in profiles:
            refs = _references(manifest, speaker, sources, sr) or fallback
            if not refs:
                raise AudioVQError(f"no reference utterances of target speaker {speaker!r} in the corpus")
            profiles[key] = SpeakerProfile(embed.mean(refs, sr), float(np.nanmedian([median_f0(w, sr) for w in refs])))
        return profiles[key]

    for c in conversions:
        src, out = audio.load(c.source, sr), audio.load(c.output, sr)
        tgt = profile(c.target, c.target, [])
        src_p = profile(c.source_speaker or c.source, c.source_speaker, [src])  # unknown speaker: the source itself
        e_out = embed(out, sr)
        e_out /= np.linalg.norm(e_out)
        e_tgt, e_src = tgt.embedding, src_p.embedding
        codes_src = model.encode(torch.from_numpy(src)[None])[0].numpy()
        codes_out = model.encode(torch.from_numpy(out)[None])[0].numpy()
        n = min(codes_src.size, codes_out.size)
        scores.append(Score(c.output, c.target, c.source_speaker, float(e_out @ e_tgt), float(e_out @ e_src),
                            bool(e_out @ e_tgt > e_out @ e_src), float(np.mean(codes_src[:n] == codes_out[:n])),
                            mel_dtw_distance(out, src, sr), audio.loudness_db(out) - audio.loudness_db(src),
                            median_f0(out, sr), tgt.f0, src_p.f0))
        if alignments and manifest and c.source_utterance:
            _collect_phones(phone_pairs, manifest, pathlib.Path(alignments), c.source_utterance,
                            codes_src[:n], codes_out[:n], model.code_rate)
    summary = {
        "conversions": len(scores),
        "closer_to_target": float(np.mean([s.closer_to_target for s in scores])),
        "sim_target": float(np.mean([s.sim_target for s in scores])),
        "sim_source": float(np.mean([s.sim_source for s in scores])),
        "code_agreement": float(np.mean([s.code_agreement for s in scores])),
        "mel_distance": float(np.mean([s.mel_distance for s in scores])),
        "loudness_diff_db": float(np.mean([s.loudness_diff_db for s in scores])),
    }
    pitch = [v for v in map(_pitch_closer, scores) if v is not None]
    summary["pitch_pairs"] = len(pitch)
    summary["pitch_closer_to_target"] = float(np.mean(pitch)) if pitch else float("nan")
    if phone_pairs["phones"]:
        phones = labels.encode_phones(np.concatenate(phone_pairs["phones"])).ids
        summary["phone_purity_output"] = metrics.cluster_quality(np.concatenate(phone_pairs["out"]), phones).phone_purity
        summary["phone_purity_source"] = metrics.cluster_quality(np.concatenate(phone_pairs["src"]), phones).phone_purity
    return {"items": [asdict(s) for s in scores], "summary": summary}


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


def format_report(report: dict) -> str:
    s = report["summary"]
    lines = [f"{'output':40} {'target':7} {'sim→tgt':>7} {'sim→src':>7} {'codes%':>6} {'mel dB':>6} {'ΔdB':>5} "
             f"{'F0 out/tgt/src Hz':>17}"]
    for i in report["items"]:
        f0 = "/".join("-" if i[k] is None or math.isnan(i[k]) else f"{i[k]:.0f}"
                      for k in ("f0_output", "f0_target", "f0_source"))
        lines.append(f"{pathlib.Path(i['output']).name[:40]:40} {i['target']:7} {i['sim_target']:7.3f} "
                     f"{i['sim_source']:7.3f} {i['code_agreement']:6.1%} {i['mel_distance']:6.1f} "
                     f"{i['loudness_diff_db']:5.1f} {f0:>17}")
    lines.append(f"closer to target speaker than to source: {s['closer_to_target']:.0%} of {s['conversions']}; "
                 f"mean similarity to target {s['sim_target']:.3f} vs source {s['sim_source']:.3f}; "
                 f"codes kept {s['code_agreement']:.1%}")
    if s.get("pitch_pairs"):
        lines.append(f"median F0 closer to the target's than to the source's: {s['pitch_closer_to_target']:.0%} "
                     f"of the {s['pitch_pairs']} pairs whose speakers are ≥ {PITCH_APART:g} semitones apart")
    if "phone_purity_output" in s:
        lines.append(f"phone purity of the output's codes {s['phone_purity_output']:.3f} "
                     f"(source's codes {s['phone_purity_source']:.3f})")
    return "\n".join(lines)


def write_json(path: str | os.PathLike, report: dict) -> None:
    clean = json.loads(json.dumps(report, default=lambda x: None if isinstance(x, float) and math.isnan(x) else x))
    write_text(path, json.dumps(clean, indent=1) + "\n")
