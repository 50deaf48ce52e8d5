"""Do the codes name the speaker — for the speakers the model trained on, and for voices it never
heard? A measure of how much voice leaks into the codes.

The method is the one of `metrics.speaker_leakage`, applied to two populations apart: each
utterance's code histogram (whole utterance, every frame; no phone labels needed) is held out
in turn and given the speaker whose centroid over that speaker's *other* utterances is nearest
in cosine similarity (`metrics.nearest_centroid_loo`). Nothing is fitted beyond those
centroids, so the same procedure works where no classifier trained on the model's speakers
could: a classifier of training speakers cannot name a voice it has no class for. For unseen
speakers the question becomes "do the codes tell these new voices apart?", answered by
nearest centroids *among the unseen speakers*, leave-one-utterance-out — a new voice is
named from its own other utterances, as an enrolment-based speaker identification would.

- seen: utterances of speakers in the model's speaker table; chance 1 / their number.
- unseen: utterances of every other speaker; chance 1 / their number.
- on equal terms: the two plain figures are not comparable when the populations differ in
  size (naming 1 of 29 is harder than 1 of 3) or in utterances per speaker (a centroid of 59
  utterances is sharper than one of 2: `--split val` holds 2–3 utterances of each trained-on
  speaker, the held-out speakers all of theirs). So both are also given for k speakers (the
  smaller population's count) with m utterances each (the smaller of the two populations'
  median per speaker): the mean accuracy over `MATCHED_DRAWS` seeded draws of k speakers and
  m of each one's utterances, each draw scored among itself only. Unseen well below trained-on
  there: the codes carry the voices they were trained on more than new ones.

Intervals: `confidence.share_interval` over utterances (each utterance's outcome a unit) with
the LOO predictions held fixed — the usual bootstrap of a test-set accuracy; it leaves out how
the centroids themselves would move on other utterances, so it is somewhat narrow. Utterances
rather than speakers are resampled because a population of 2–3 unseen speakers is too few
clusters to resample.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

from . import confidence, metrics

MATCHED_DRAWS = 50  # seeded draws of k seen speakers for the matched seen figure


class SpeakerNaming(NamedTuple):
    accuracy: float                       # utterances whose speaker is named from the codes
    interval: confidence.Interval | None  # LEVEL bootstrap interval over utterances
    chance: float                         # 1 / speakers
    speakers: int
    utterances: int


def histograms(codes: Sequence[np.ndarray], num_codes: int) -> np.ndarray:
    """(U, K) normalised code histogram of each utterance's codes (T_u,); an empty utterance
    gives a row of zeros (it never matches)."""
    out = np.zeros((len(codes), num_codes))
    for u, c in enumerate(codes):
        counts = np.bincount(np.asarray(c, np.int64).reshape(-1), minlength=num_codes)[:num_codes]
        out[u] = counts / max(counts.sum(), 1)
    return out


def naming(hist: np.ndarray, speakers: Sequence[str], resamples: int = confidence.RESAMPLES,
           seed: int = 0) -> SpeakerNaming | None:
    """Leave-one-utterance-out nearest-centroid naming of `speakers` (U,) from `hist` (U, K);
    None with fewer than 2 speakers."""
    names, spk = np.unique(np.asarray(speakers, dtype=object).astype(str), return_inverse=True)
    if names.size < 2:
        return None
    correct = metrics.nearest_centroid_loo(hist, spk, names.size) == spk
    n = correct.size
    return SpeakerNaming(float(correct.mean()), confidence.share_interval(correct.astype(int), np.ones(n), resamples,
                                                                          seed), 1.0 / names.size, int(names.size), n)


def matched_accuracy(hist: np.ndarray, speakers: Sequence[str], k: int, per_speaker: int,
                     draws: int = MATCHED_DRAWS, seed: int = 0) -> float:
    """Mean naming accuracy among k speakers with `per_speaker` utterances each: `draws` seeded
    draws of k of the speakers and of that many of each one's utterances (all of them where a
    speaker has fewer), each draw scored on its own utterances only. NaN when k < 2, there are
    fewer than k speakers, or per_speaker < 2 (one utterance leaves its own speaker no centroid)."""
    names, spk = np.unique(np.asarray(speakers, dtype=object).astype(str), return_inverse=True)
    if k < 2 or names.size < k or per_speaker < 2:
        return math.nan
    rng = np.random.default_rng([seed, names.size, k, per_speaker])
    members = [np.flatnonzero(spk == s) for s in range(names.size)]
    scores = []
    for _ in range(draws):
        chosen = rng.choice(names.size, k, replace=False)
        picked = [rng.choice(members[s], min(per_speaker, members[s].size), replace=False) for s in chosen]
        rows = np.concatenate(picked)
        sub = np.repeat(np.arange(k), [p.size for p in picked])
        scores.append(float((metrics.nearest_centroid_loo(hist[rows], sub, k) == sub).mean()))
    return float(np.mean(scores))


def speaker_naming(codes: Sequence[np.ndarray], speakers: Sequence[str], model_speakers: set[str],
                   num_codes: int, resamples: int = confidence.RESAMPLES, seed: int = 0) -> dict:
    """The codes' speaker naming for the model's speakers and for the others, JSON-ready:
    {"seen": {...} | None, "unseen": {...} | None, "matched": {"speakers": k, "per_speaker": m,
    "draws", "chance", "seen", "unseen"} | None}, each population's dict a SpeakerNaming's fields
    (interval as [low, high]); "matched": both populations on equal terms (module docstring). codes: each utterance's codes (T_u,); speakers (U,) its speaker id."""
    hist = histograms(codes, num_codes)
    speakers = np.asarray(list(speakers), dtype=object).astype(str)
    seen = np.isin(speakers, sorted(model_speakers))
    out = {}
    for name, keep in (("seen", seen), ("unseen", ~seen)):
        r = naming(hist[keep], speakers[keep], resamples, seed) if keep.any() else None
        out[name] = None if r is None else dict(r._asdict(), interval=None if r.interval is None else list(r.interval))
    out["matched"] = None
    if out["seen"] and out["unseen"]:
        k = min(out["seen"]["speakers"], out["unseen"]["speakers"])
        per = int(min(np.median(np.unique(speakers[keep], return_counts=True)[1]) for keep in (seen, ~seen)))
        acc = {name: matched_accuracy(hist[keep], speakers[keep], k, per, seed=seed)
               for name, keep in (("seen", seen), ("unseen", ~seen))}
        if not any(math.isnan(a) for a in acc.values()):
            out["matched"] = {"speakers": k, "per_speaker": per, "draws": MATCHED_DRAWS, "chance": 1.0 / k, **acc}
    return out


def format_naming(result: dict) -> list[str]:
    """Lines for the printed report: the seen and the unseen figure side by side."""
    def line(label: str, r: dict | None, why: str) -> str:
        if r is None:
            return f"  {label}: n/a ({why})"
        return (f"  {label}: {confidence.describe_percent(r['accuracy'], r['interval'])} of {r['utterances']} "
                f"utterances of {r['speakers']} speakers (chance {r['chance']:.1%})")
    lines = ["speaker named from the codes (leave-one-utterance-out nearest centroid of code histograms, "
             f"whole utterances; {confidence.LEVEL:.0%} bootstrap over utterances):",
             line("speakers the model trained on", result.get("seen"), "fewer than 2 of them here"),
             line("speakers it never heard", result.get("unseen"),
                  "fewer than 2 such speakers in the corpus: nothing to tell apart")]
    m = result.get("matched")
    if m:
        lines.append(f"  on equal terms ({m['speakers']} speakers at a time, {m['per_speaker']} utterances each; mean of "
                     f"{m['draws']} draws): trained-on {m['seen']:.1%}, never heard {m['unseen']:.1%} "
                     f"(chance {m['chance']:.1%})")
    return lines
