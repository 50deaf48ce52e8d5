"""How sure a figure is: seeded bootstrap intervals, and when a figure rests on too little.

Intervals are basic bootstrap intervals at `LEVEL` (`bootstrap_interval`: `RESAMPLES` resamples
drawn with replacement, seeded) over the units that make the data independent enough to
resample:

- phone/code scores (phone purity, cluster purity, PNMI): utterances. Frames of one utterance
  are far from independent, so resampling frames would give intervals that are much too narrow.
- ABX: the A speakers. ABX averages cells per (speaker, p, q), then over speakers; resampling
  speakers reweights that middle step and keeps the cells of one speaker together. (The X
  speaker of an across cell stays as it was: only A is resampled.)
- shares of yes/no outcomes (`share_interval`): whatever units the caller names, e.g. the
  utterances whose speaker is named from its codes (analysis/speakers.py), or the sources of
  conversions that land closer to their target (evaluate/closer.py).

A bootstrap over few units says little: with one unit the interval is a point. Intervals are
None where there are fewer than 2 units.

Too few to mean anything (`enough`): an ABX figure over fewer than `MIN_TRIPLETS` triplets or
fewer than `MIN_CELLS` cells is printed with its counts and no interval, e.g.
"25.0% (12 triplets in 6 cells: too few to mean anything)". Why these numbers: a cell's error
is a mean of 0/½/1 scores, so even independent cells have a standard deviation up to 0.5; over
20 cells the standard error of their mean is 0.5/√20 ≈ 11 points and a 95% interval spans
about ±22 points, which already covers most of the way from a good score (~5%) to chance (50%).
Fewer than 100 triplets means most cells rest on one or two comparisons.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

LEVEL = 0.95        # share of the bootstrap distribution inside an interval
RESAMPLES = 1000    # bootstrap resamples
CHUNK = 100         # resamples whose contingency tables are built at once
MIN_TRIPLETS = 100  # an ABX figure over fewer triplets …
MIN_CELLS = 20      # … or fewer cells is too few to mean anything


class Interval(NamedTuple):
    low: float
    high: float


def draws(units: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, units) counts: how often each unit is drawn in each bootstrap resample of
    `units` draws with replacement. Deterministic given `seed`."""
    rng = np.random.default_rng([seed, units])
    picks = rng.integers(0, units, size=(resamples, units)) + units * np.arange(resamples)[:, None]
    return np.bincount(picks.reshape(-1), minlength=resamples * units).reshape(resamples, units)


def bootstrap_interval(estimate: float, values: np.ndarray, level: float = LEVEL,
                       bounds: tuple[float, float] = (0.0, 1.0)) -> Interval | None:
    """The basic (reverse-percentile) bootstrap interval of `estimate` from its resampled
    `values`: [2·estimate − q_high, 2·estimate − q_low], q the quantiles that leave (1 − level)/2
    of the finite values on each side, clipped to `bounds`. None when no value is finite.

    Why not the plain percentiles: resampling with replacement repeats utterances, which shifts
    plug-in mutual information (PNMI) upwards; reflecting the resampled values about the
    estimate takes that shift off instead of adding it. (When the estimate itself is mostly such
    a shift, as for random codes, the interval lies below it.)"""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or not math.isfinite(estimate):
        return None
    tail = (1 - level) / 2
    q_low, q_high = np.quantile(v, [tail, 1 - tail])
    low, high = np.clip([2 * estimate - q_high, 2 * estimate - q_low], *bounds)
    return Interval(float(low), float(high))


# ------------------------------------------------------------------ shares of yes/no outcomes

def share_interval(successes, trials, resamples: int = RESAMPLES, seed: int = 0,
                   level: float = LEVEL) -> Interval | None:
    """Bootstrap interval of the share sum(successes) / sum(trials) over units.

    successes, trials (units,): each unit's count of "yes" outcomes and of outcomes (≥ 1), e.g.
    a source utterance converted to 3 targets of which 2 landed: (2, 3). A resample draws the
    units with replacement (`draws`, seeded) and pools their counts, so outcomes of one unit
    stay together. None with fewer than 2 units. When every outcome agrees (0% or 100%) every
    resample agrees too, and the interval is that single point: a bootstrap cannot say how
    far the share might move on more data."""
    s, t = np.asarray(successes, np.float64).reshape(-1), np.asarray(trials, np.float64).reshape(-1)
    if s.shape != t.shape or (t < 1).any() or (s < 0).any() or (s > t).any():
        raise ValueError("successes and trials: one count of each per unit, 0 ≤ successes ≤ trials, trials ≥ 1")
    if s.size < 2 or resamples < 1:
        return None
    w = draws(s.size, resamples, seed).astype(np.float64)
    return bootstrap_interval(float(s.sum() / t.sum()), (w @ s) / (w @ t), level)


# ------------------------------------------------------------ phone/code scores over utterances

def cluster_scores(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Phone purity, cluster purity and PNMI (see `metrics.cluster_quality`) of a stack of
    (..., K, P) contingency tables (counts or weights), each (...,). NaN where a table is empty,
    PNMI NaN where only one phone occurs."""
    t = np.asarray(table, np.float64)
    n = t.sum((-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        phone_purity = t.max(-1).sum(-1) / n
        cluster_purity = t.max(-2).sum(-1) / n
        p = t / n[..., None, None]
        pk, pp = p.sum(-1, keepdims=True), p.sum(-2, keepdims=True)
        terms = np.where(p > 0, p * np.log2(p / (pk * pp)), 0.0)
        mi = np.maximum(terms.sum((-2, -1)), 0.0)
        marg = p.sum(-2)
        h_phone = -np.where(marg > 0, marg * np.log2(marg), 0.0).sum(-1)
        pnmi = np.where(h_phone > 0, mi / h_phone, np.nan)
    return phone_purity, cluster_purity, pnmi


def cluster_quality_intervals(codes, phones, groups, num_codes: int, num_phones: int,
                              resamples: int = RESAMPLES, seed: int = 0,
                              level: float = LEVEL) -> dict[str, Interval | None]:
    """{"phone_purity", "cluster_purity", "pnmi"} → bootstrap interval over utterances.

    codes, phones, groups (N,): frames, their phone ids and utterance ids. Each resample weights
    each utterance's (code, phone) counts by how often the utterance was drawn."""
    codes, phones = np.asarray(codes, np.int64), np.asarray(phones, np.int64)
    _, utt = np.unique(np.asarray(groups).reshape(-1), return_inverse=True)
    utt = utt.reshape(-1)
    units = int(utt.max()) + 1 if utt.size else 0
    names = ("phone_purity", "cluster_purity", "pnmi")
    if units < 2 or resamples < 1:
        return dict.fromkeys(names)
    # (utterances, K·P) counts, sparse: an utterance holds few of the cells
    from scipy.sparse import csr_matrix
    size = num_codes * num_phones
    keys, counts = np.unique(utt * size + codes * num_phones + phones, return_counts=True)
    per_utt = csr_matrix((counts.astype(np.float64), (keys // size, keys % size)), shape=(units, size))
    weights = draws(units, resamples, seed).astype(np.float64)
    scores = []
    for chunk in np.array_split(weights, -(-resamples // CHUNK)):  # bounded memory: CHUNK tables at a time
        tables = np.asarray((per_utt.T @ chunk.T).T)  # (chunk, K·P)
        scores.append(np.stack(cluster_scores(tables.reshape(len(chunk), num_codes, num_phones)), 1))
    scores = np.concatenate(scores)
    estimate = cluster_scores(np.bincount(codes * num_phones + phones, minlength=size).reshape(num_codes, num_phones))
    return {name: bootstrap_interval(float(estimate[i]), scores[:, i], level) for i, name in enumerate(names)}


# ------------------------------------------------------------------------------ ABX over speakers

def abx_interval(errors, speaker, p, q, resamples: int = RESAMPLES, seed: int = 0,
                 level: float = LEVEL) -> Interval | None:
    """Bootstrap interval of an ABX score over its A speakers.

    errors, speaker, p, q (cells,): each cell's error and its A speaker and (p, q) pair, as
    `abx.average_cells` takes them. A resample draws the speakers with replacement; a speaker
    drawn twice counts twice in each (p, q) mean over speakers (`weighted_average`). None with
    fewer than 2 speakers."""
    errors = np.asarray(errors, np.float64)
    keep = np.isfinite(errors)
    if not keep.any():
        return None
    _, spk = np.unique(np.asarray(speaker)[keep], return_inverse=True)
    spk = spk.reshape(-1)
    units = int(spk.max()) + 1
    if units < 2 or resamples < 1:
        return None
    means, present = speaker_pair_means(errors[keep], spk, np.asarray(p)[keep], np.asarray(q)[keep], units)
    estimate = float(weighted_average(means, present, np.ones((1, units)))[0])
    values = weighted_average(means, present, draws(units, resamples, seed))
    return bootstrap_interval(estimate, values, level)


def speaker_pair_means(errors, speaker, p, q, speakers: int) -> tuple[np.ndarray, np.ndarray]:
    """(speakers, pairs) mean cell error of each (speaker, (p, q)) and whether it has cells:
    the first averaging step of `abx.average_cells`. speaker: ids in [0, speakers)."""
    _, pair = np.unique(np.stack([np.asarray(p), np.asarray(q)], 1), axis=0, return_inverse=True)
    pair = pair.reshape(-1)
    pairs = int(pair.max()) + 1
    index = np.asarray(speaker) * pairs + pair
    total = np.bincount(index, errors, minlength=speakers * pairs)
    count = np.bincount(index, minlength=speakers * pairs)
    present = count > 0
    means = np.divide(total, count, out=np.zeros_like(total), where=present)
    return means.reshape(speakers, pairs), present.reshape(speakers, pairs)


def weighted_average(means: np.ndarray, present: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ABX's last two averaging steps under speaker weights: per (p, q) the weighted mean over
    speakers, then the plain mean over the (p, q) pairs that any weighted speaker has.
    means, present (speakers, pairs); weights (resamples, speakers) → (resamples,)."""
    w = np.asarray(weights, np.float64)
    num = w @ (means * present)
    den = w @ present.astype(np.float64)
    has = den > 0
    per_pair = np.divide(num, den, out=np.zeros_like(num), where=has)
    with np.errstate(invalid="ignore"):
        return per_pair.sum(1) / has.sum(1)


# ------------------------------------------------------------------------------------- wording

def enough(triplets: int, cells: int) -> bool:
    """Does an ABX figure rest on enough comparisons to mean something (module docstring)?"""
    return triplets >= MIN_TRIPLETS and cells >= MIN_CELLS


def too_few(triplets: int, cells: int) -> str:
    """Why a figure means nothing: '12 triplets in 6 cells: too few to mean anything'."""
    return (f"{triplets:,} triplet{'s' * (triplets != 1)} in {cells:,} cell{'s' * (cells != 1)}: "
            "too few to mean anything")


def describe_percent(value: float | None, interval, triplets: int | None = None, cells: int | None = None) -> str:
    """A share as people should read it: '37.3% [32.1–42.0]', '25.0% (12 triplets in 6 cells:
    too few to mean anything)', or 'n/a'. `interval`: (low, high) or None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{100 * value:.1f}%"
    if triplets is not None and cells is not None and not enough(triplets, cells):
        return f"{text} ({too_few(triplets, cells)})"
    if interval is not None:
        text += f" [{100 * interval[0]:.1f}–{100 * interval[1]:.1f}]"
    return text


def describe_number(value: float | None, interval, digits: int = 3) -> str:
    """'0.205 [0.190–0.221]', or 'n/a'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:.{digits}f}"
    if interval is not None:
        text += f" [{interval[0]:.{digits}f}–{interval[1]:.{digits}f}]"
    return text
