"""How well discrete codes line up with phones: every metric is a pure function of integer arrays.

Inputs are frame-level: `codes (N,)` in [0, K), `phones (N,)` in [0, P), and where needed
`groups (N,)` utterance ids (the frames of one utterance in time order). Results are plain
floats or small NamedTuples. Entropies are in bits unless a name says otherwise.

Cluster-quality metrics follow HuBERT (Hsu et al. 2021, "cluster quality"):
  phone purity   = E_code [max_phone p(phone | code)]
  cluster purity = E_phone[max_code  p(code | phone)]
  PNMI           = I(phone; code) / H(phone)
ARI and NMI are scikit-learn's (`adjusted_rand_score`, `normalized_mutual_info_score` with its
default arithmetic-mean normalisation), called by `report.evaluate_codes`.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..errors import AudioVQError


def _ints(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise AudioVQError(f"{name} must be one-dimensional, got shape {x.shape}")
    if x.size and not np.issubdtype(x.dtype, np.integer):
        raise AudioVQError(f"{name} must hold integers, got {x.dtype}")
    if x.size and x.min() < 0:
        raise AudioVQError(f"{name} holds a negative id ({x.min()}); drop unlabelled frames first")
    return x.astype(np.int64, copy=False)


def _pair(codes, phones) -> tuple[np.ndarray, np.ndarray]:
    codes, phones = _ints(codes, "codes"), _ints(phones, "phones")
    if codes.shape != phones.shape:
        raise AudioVQError(f"codes and phones differ in length ({codes.size} vs {phones.size})")
    if codes.size == 0:
        raise AudioVQError("no frames to evaluate")
    return codes, phones


def contingency(codes, phones, num_codes: int | None = None, num_phones: int | None = None) -> np.ndarray:
    """(K, P) int64 counts of frames with each (code, phone) pair."""
    codes, phones = _pair(codes, phones)
    k = int(codes.max()) + 1 if num_codes is None else int(num_codes)
    p = int(phones.max()) + 1 if num_phones is None else int(num_phones)
    if codes.max() >= k or phones.max() >= p:
        raise AudioVQError(f"ids exceed the table: codes < {k} and phones < {p} expected")
    return np.bincount(codes * p + phones, minlength=k * p).reshape(k, p)


def entropy_bits(counts) -> float:
    """Shannon entropy in bits of the distribution proportional to `counts`."""
    c = np.asarray(counts, dtype=np.float64).reshape(-1)
    c = c[c > 0]
    if c.size == 0:
        return 0.0
    p = c / c.sum()
    return max(0.0, float(-(p * np.log2(p)).sum()))  # max: no "-0.0" for a single symbol


def mutual_information_bits(table) -> float:
    """I(row; column) in bits of a contingency table (never negative)."""
    from sklearn.metrics import mutual_info_score  # slow to import; only the metrics need it

    return max(float(mutual_info_score(None, None, contingency=np.asarray(table))) / math.log(2), 0.0)


class ClusterQuality(NamedTuple):
    phone_purity: float    # E_code [max_phone p(phone|code)]
    cluster_purity: float  # E_phone[max_code p(code|phone)]
    pnmi: float            # I(phone; code) / H(phone); nan when only one phone occurs
    mutual_info_bits: float
    phone_entropy_bits: float


def cluster_quality(codes, phones) -> ClusterQuality:
    """HuBERT's phone purity, cluster purity and phone-normalised mutual information."""
    table = contingency(codes, phones)
    n = table.sum()
    mi = mutual_information_bits(table)
    h_phone = entropy_bits(table.sum(0))
    return ClusterQuality(
        phone_purity=float(table.max(1).sum() / n),
        cluster_purity=float(table.max(0).sum() / n),
        pnmi=mi / h_phone if h_phone > 0 else math.nan,
        mutual_info_bits=mi,
        phone_entropy_bits=h_phone,
    )


class MappingAccuracy(NamedTuple):
    accuracy: float           # scoring-half frames whose code's mapped phone is right
    majority_accuracy: float  # scoring-half frames that are the mapping half's most frequent phone
    unseen_fraction: float    # scoring-half frames whose code never occurred in the mapping half
    fit_frames: int
    score_frames: int


def split_utterances(groups) -> np.ndarray:
    """(N,) bool: True for frames in the mapping half.

    Deterministic: the sorted utterance ids alternate between halves (1st, 3rd, … map), so both
    halves see every speaker when ids are grouped by speaker.
    """
    groups = np.asarray(groups).reshape(-1)
    ids, inverse = np.unique(groups, return_inverse=True)
    if ids.size < 2:
        raise AudioVQError(f"code-to-phone accuracy needs at least 2 utterances, got {ids.size}")
    return (inverse % 2) == 0


def mapping_accuracy(codes, phones, groups) -> MappingAccuracy:
    """The paper's accuracy: map each code to its most frequent phone, score on held-out utterances.

    The mapping is learned on half of the utterances (`split_utterances`) and scored on the
    other half; a code unseen in the mapping half maps to the mapping half's most frequent
    phone, which is also the majority baseline's prediction. Ties go to the lower phone id.
    """
    codes, phones = _pair(codes, phones)
    groups = np.asarray(groups).reshape(-1)
    if groups.shape != codes.shape:
        raise AudioVQError(f"groups and codes differ in length ({groups.size} vs {codes.size})")
    fit = split_utterances(groups)
    k, p = int(codes.max()) + 1, int(phones.max()) + 1
    table = contingency(codes[fit], phones[fit], k, p)
    majority = int(table.sum(0).argmax())
    code_to_phone = np.where(table.sum(1) > 0, table.argmax(1), majority)
    score_codes, score_phones = codes[~fit], phones[~fit]
    return MappingAccuracy(
        accuracy=float((code_to_phone[score_codes] == score_phones).mean()),
        majority_accuracy=float((score_phones == majority).mean()),
        unseen_fraction=float((table.sum(1)[score_codes] == 0).mean()),
        fit_frames=int(fit.sum()),
        score_frames=int((~fit).sum()),
    )


class CodeUsage(NamedTuple):
    used: int             # distinct codes that occur
    usage: float          # used / K
    entropy_bits: float   # H of the code unigram distribution
    perplexity: float     # 2 ** entropy_bits (= e ** entropy in nats): the effective number of equally used codes
    bitrate: float        # ZeroSpeech 2019: entropy_bits × symbols per second, frames as emitted
    dedup_bitrate: float  # the same after merging repeated codes within an utterance


def code_usage(codes, num_codes: int, code_rate: float, groups=None, hold: int = 1) -> CodeUsage:
    """Codebook usage, entropy, perplexity and bitrate of a code stream at `code_rate` Hz.

    ZeroSpeech 2019 bitrate = (number of symbols / total duration) × H(symbol distribution);
    for a fixed-rate stream that is code_rate × H. A stream whose every code is held over
    `hold` frames (a model with a code stride: one code per `hold` frames, repeated to the
    frame rate) emits code_rate / hold symbols per second, so its bitrate is H × code_rate /
    hold (the frequencies, hence H, are the same repeated or not). The deduplicated variant
    counts one symbol per run of equal codes (runs break at utterance boundaries given by
    `groups`).
    """
    if hold < 1:
        raise AudioVQError(f"hold must be a whole number of frames ≥ 1, got {hold}")
    codes = _ints(codes, "codes")
    if codes.size and codes.max() >= num_codes:
        raise AudioVQError(f"code {codes.max()} is out of range for a codebook of {num_codes}")
    counts = np.bincount(codes, minlength=num_codes)
    h = entropy_bits(counts)
    starts = run_starts(codes, groups)
    kept = codes[starts]
    duration = codes.size / code_rate
    dedup_h = entropy_bits(np.bincount(kept, minlength=num_codes))
    return CodeUsage(
        used=int((counts > 0).sum()),
        usage=float((counts > 0).sum() / num_codes),
        entropy_bits=h,
        perplexity=float(2.0 ** h),
        bitrate=h * code_rate / hold,
        dedup_bitrate=dedup_h * kept.size / duration if duration > 0 else 0.0,
    )


def run_starts(values, groups=None) -> np.ndarray:
    """(N,) bool: True where a run of equal values begins (a new utterance always begins one)."""
    values = np.asarray(values).reshape(-1)
    start = np.ones(values.size, dtype=bool)
    start[1:] = values[1:] != values[:-1]
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        start[1:] |= groups[1:] != groups[:-1]
    return start


class RunLengths(NamedTuple):
    code_frames: float    # mean length of a run of one code, frames
    code_seconds: float
    phone_frames: float   # mean length of a run of one phone label, frames
    phone_seconds: float  # (≈ phone segment duration, at the code frame resolution)


def run_lengths(codes, phones, groups, code_rate: float) -> RunLengths:
    """Mean run length of codes vs phone labels over the same frames, runs broken per utterance.

    Phone segments are measured on the frame labels, so a phone shorter than a frame can
    vanish and the mean is quantised to the frame rate.
    """
    codes, phones = _pair(codes, phones)
    code_runs = codes.size / run_starts(codes, groups).sum()
    phone_runs = phones.size / run_starts(phones, groups).sum()
    return RunLengths(float(code_runs), float(code_runs / code_rate),
                      float(phone_runs), float(phone_runs / code_rate))


class SpeakerLeakage(NamedTuple):
    accuracy: float       # leave-one-utterance-out nearest-centroid speaker accuracy
    chance: float         # 1 / number of speakers
    majority: float       # share of utterances from the most common speaker
    num_speakers: int
    num_utterances: int


def code_histograms(codes, groups, num_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """(U, K) normalised code histogram per utterance and the (U,) sorted utterance ids."""
    codes = _ints(codes, "codes")
    ids, utt = np.unique(np.asarray(groups).reshape(-1), return_inverse=True)
    hist = np.bincount(utt * num_codes + codes, minlength=ids.size * num_codes)
    hist = hist.reshape(ids.size, num_codes).astype(np.float64)
    return hist / hist.sum(1, keepdims=True), ids


def nearest_centroid_loo(hist: np.ndarray, speaker: np.ndarray, num_speakers: int) -> np.ndarray:
    """(U,) the speaker predicted for each utterance, left out in turn: the speaker whose
    centroid (sum of that speaker's *other* utterances' histograms) is nearest in cosine
    similarity; ties go to the lower speaker id.

    hist (U, K): one (normalised) histogram per utterance; speaker (U,) ids in [0, num_speakers).
    A speaker with a single utterance has an empty centroid for it (never predicted there)."""
    hist = np.asarray(hist, np.float64)
    spk = np.asarray(speaker, np.int64)
    sums = np.zeros((num_speakers, hist.shape[1]))
    np.add.at(sums, spk, hist)
    # centroid of each speaker without utterance u, for every u: (U, S, K) is too big, so
    # score via dot products: (sum_s - [s==spk_u] h_u) · h_u and its norm.
    dots = hist @ sums.T                                   # (U, S)
    sq = np.einsum("sk,sk->s", sums, sums)[None, :].repeat(hist.shape[0], 0)
    own = np.arange(hist.shape[0]), spk
    self_sq = np.einsum("uk,uk->u", hist, hist)
    sq[own] = sq[own] - 2 * np.einsum("uk,uk->u", hist, sums[spk]) + self_sq
    dots[own] -= self_sq
    norms = np.sqrt(np.maximum(sq, 0.0)) * np.sqrt(self_sq)[:, None]
    cosine = np.where(norms > 1e-12, dots / np.where(norms > 1e-12, norms, 1.0), -np.inf)
    return cosine.argmax(1)


def speaker_leakage(codes, groups, speakers, num_codes: int) -> SpeakerLeakage:
    """How well an utterance's code histogram predicts its speaker.

    Each utterance is held out in turn and given the speaker whose centroid (mean normalised
    histogram of that speaker's *other* utterances) is nearest in cosine similarity — a
    leave-one-utterance-out cross-validation with no fitted parameters. A speaker with a
    single utterance cannot be predicted for it (its centroid is empty) but still competes.
    Accuracy near `chance`/`majority` means the codes carry little speaker identity.
    """
    codes = _ints(codes, "codes")
    groups = np.asarray(groups).reshape(-1)
    speakers = np.asarray(speakers).reshape(-1)
    if not codes.shape == groups.shape == speakers.shape:
        raise AudioVQError("codes, groups and speakers must have the same length")
    hist, ids = code_histograms(codes, groups, num_codes)
    _, utt = np.unique(groups, return_inverse=True)
    first = np.zeros(ids.size, dtype=np.int64)
    first[utt[::-1]] = np.arange(codes.size)[::-1]  # first frame of each utterance
    spk_names, spk = np.unique(speakers[first], return_inverse=True)
    if np.any(speakers != spk_names[spk][utt]):
        raise AudioVQError("an utterance has frames from more than one speaker")
    if spk_names.size < 2:
        raise AudioVQError("speaker leakage needs at least 2 speakers")
    predicted = nearest_centroid_loo(hist, spk, spk_names.size)
    share = np.bincount(spk) / ids.size
    return SpeakerLeakage(
        accuracy=float((predicted == spk).mean()),
        chance=1.0 / spk_names.size,
        majority=float(share.max()),
        num_speakers=int(spk_names.size),
        num_utterances=int(ids.size),
    )
