"""Triphone ABX discriminability of frame features (ZeroSpeech 2017/2019 definitions).

An *item* is one occurrence of a phone with real phones on both sides: its category is the
triphone (previous, centre, next) and its speaker; its features are the frames of the centre
phone only (the context defines the category, ZeroSpeech convention). A frame belongs to an
item when its centre `(i + 0.5) / frame_rate + offset` lies in the phone's closed interval
[onset, offset] (ZeroSpeech 2021 / fastabx slicing), compared with a 1 ns tolerance so that
float rounding of the sum does not decide a centre that falls on a boundary. Such a frame
belongs to both neighbours' items; every other frame is the one `labels.frame_labels` labels
with the item's phone. Silence (any spelling in
`labels.SILENCE_LABELS`, e.g. "sil", "sp", "") and holes between intervals are context
boundaries: a phone next to silence, a hole or an utterance edge makes no item. Items whose
phone covers no frame centre are dropped.

Distances: frame distance is the angle between the two vectors over pi (0 for identical
directions, 0.5 orthogonal, 1 opposite), computed as 2·asin(|u − v| / 2) / pi on unit vectors
(the same angle as arccos(cos) / pi, exact at 0); a zero vector is at 0 from a zero vector and
0.5 from anything else. Item distance is DTW over the frame-distance matrix with the moves
(i−1, j−1), (i−1, j), (i, j−1) (ties preferred in that order), the cost of the cheapest path
divided by its length (the mean frame distance along the path). Each unordered pair of items
is aligned once, the item of the lower-numbered category (or lower index) as the rows, so
d(a, x) = d(x, a). Code streams are scored through their codeword vectors (`codebook[codes]`)
or one-hot rows; both work with this distance.

Cells and triplets: a within-speaker cell is (context, speaker, p, q) with p ≠ q:
A = X = the items of triphone (prev, p, next) of that speaker, B = those of (prev, q, next) of
the same speaker; its triplets are all (a, b, x) with x ≠ a, so it needs two A items. An
across-speaker cell is (context, speaker s, speaker s', p, q): A and B as above from s,
X = the items of (prev, p, next) from s' ≠ s. A triplet scores 1 (an error) when
d(a, x) > d(b, x), 0.5 on a tie, 0 otherwise; a cell's error is the mean over its triplets.

Averaging order (that of ZeroSpeech 2021 and fastabx's `zerospeech_abx`, checked against
fastabx 0.9 by tools/abx_crosscheck.py):
within:  cells → mean over contexts for each (speaker, p, q) → mean over speakers for each
         (p, q) → mean over the (p, q) pairs (as ZeroSpeech 2017).
across:  cells → mean over the (context, s') cells of each (s, p, q) together → mean over s for
         each (p, q) → mean over the (p, q) pairs. (ZeroSpeech 2017 averaged contexts per
         (s, s', p, q), then the (s, s') pairs together.)
Ordered pairs: (p, q) and (q, p) are different cells (A is p in one, q in the other).

Subsampling (for long corpora, in the spirit of the Libri-light/fastabx `max_size_group` and
`max_x_across`): at most `max_per_category` items are kept per (triphone, speaker) category,
drawn at random; for the across task at most `max_x_speakers` speakers s' are drawn per A
category (context, s, p). Both draws are deterministic given `seed` and the input order.
`ABXResult` says how many items, cells and triplets were used.

Errors are fractions in [0, 1] (ZeroSpeech prints them as percentages: `summary_line`).

Confidence: each score carries a bootstrap interval over its A speakers
(`confidence.abx_interval`, seeded); `confidence.enough` says whether it rests on enough
triplets and cells to mean anything.
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple, Sequence

import numpy as np
from numba import njit, prange

from ..errors import ConfigError
from . import confidence
from .labels import SILENCE_LABELS

_JIT = dict(cache=True, error_model="numpy")
_TIME_TOLERANCE = 1e-9  # seconds: a frame centre this close to a phone boundary lies on it


class Item(NamedTuple):
    utterance: int   # index into the corpus lists
    onset: float     # seconds, start of the centre phone
    offset: float    # seconds, end of the centre phone
    phone: str       # centre phone
    prev: str        # previous phone
    next: str        # next phone
    speaker: str


class ABXResult(NamedTuple):
    within: float               # within-speaker error (fraction); NaN when no cell could be formed
    across: float | None        # across-speaker error; None when undefined (see `reason`)
    cells_within: int
    cells_across: int
    triplets: int               # triplets scored, both tasks
    seconds: float              # wall time of `abx`
    items: int = 0              # items used (after subsampling)
    items_total: int = 0        # items found (phones with real phones on both sides and ≥ 1 frame)
    triplets_within: int = 0
    triplets_across: int = 0
    distances: int = 0          # DTW alignments computed
    reason: str = ""            # why `across` is None or `within` NaN; "" when both are defined
    within_ci: tuple[float, float] | None = None  # bootstrap interval over speakers (confidence.LEVEL)
    across_ci: tuple[float, float] | None = None  # None: fewer than 2 speakers, or no score


def is_silence(label) -> bool:
    """Silence, pause or non-speech (any spelling in `labels.SILENCE_LABELS`, any case)."""
    return str(label).strip().lower() in SILENCE_LABELS


def _interval(iv) -> tuple[float, float, str]:
    if hasattr(iv, "start"):
        return float(iv.start), float(iv.end), str(iv.label)
    start, end, label = iv
    return float(start), float(end), str(label)


def triphone_items(intervals: Sequence[Sequence], speakers: Sequence, *,
                   tolerance: float = 1e-6) -> list[Item]:
    """Triphone items of a corpus: per utterance, its phone intervals ((start_s, end_s, label)
    tuples or objects with `.start`, `.end`, `.label`) and its speaker.

    Empty intervals (end ≤ start) are ignored. A phone makes an item when it is not silence and
    both neighbours are non-silence intervals that touch it (within `tolerance` seconds); the
    first and last interval of an utterance never do. Items come in utterance, then time order.
    Labels are compared as given: normalise them first (`labels.normalize_intervals`) so that
    e.g. `AH0` and `AH1` are one phone.
    """
    if len(intervals) != len(speakers):
        raise ConfigError(f"{len(intervals)} interval lists but {len(speakers)} speakers")
    items: list[Item] = []
    for u, (ivs, speaker) in enumerate(zip(intervals, speakers)):
        ivs = sorted((iv for iv in map(_interval, ivs) if iv[1] > iv[0]), key=lambda iv: iv[0])
        sil = [is_silence(iv[2]) for iv in ivs]
        for k in range(1, len(ivs) - 1):
            if sil[k - 1] or sil[k] or sil[k + 1]:
                continue
            (_, prev_end, prev), (start, end, phone), (next_start, _, nxt) = ivs[k - 1:k + 2]
            if abs(prev_end - start) > tolerance or abs(end - next_start) > tolerance:
                continue
            items.append(Item(u, start, end, phone, prev, nxt, str(speaker)))
    return items


def item_frames(items: Sequence[Item], num_frames: Sequence[int], frame_rate: float,
                offsets: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(start, stop) frame indices of each item: the frames whose centres
    `(i + 0.5) / frame_rate + offsets[utterance]` lie in [onset, offset], ends included (within
    `_TIME_TOLERANCE`). stop == start for an item that covers no frame centre."""
    if not frame_rate > 0:
        raise ConfigError(f"frame rate must be positive, got {frame_rate}")
    n = len(items)
    starts, stops = np.zeros(n, np.int64), np.zeros(n, np.int64)
    if n == 0:
        return starts, stops
    utt = np.fromiter((it.utterance for it in items), np.int64, n)
    onset = np.fromiter((it.onset for it in items), np.float64, n)
    offset = np.fromiter((it.offset for it in items), np.float64, n)
    order = np.argsort(utt, kind="stable")
    bounds = np.flatnonzero(np.diff(utt[order])) + 1
    for idx in np.split(order, bounds):
        u = int(utt[idx[0]])
        shift = 0.0 if offsets is None else float(offsets[u])
        times = (np.arange(int(num_frames[u])) + 0.5) / float(frame_rate) + shift  # as frame_labels
        starts[idx] = np.searchsorted(times, onset[idx] - _TIME_TOLERANCE, side="left")
        stops[idx] = np.searchsorted(times, offset[idx] + _TIME_TOLERANCE, side="right")
    return starts, stops


# ---------------------------------------------------------------- distances

def _unit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit length (float32) and a flag for zero rows (kept at zero)."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))
    zero = ~(norm > 0)
    unit = np.divide(x, norm[:, None], out=np.zeros_like(x), where=~zero[:, None])
    return unit.astype(np.float32), zero


def frame_distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n, m) angular distances between the rows of x (n, dim) and y (m, dim), in [0, 1]."""
    x, y = np.atleast_2d(x), np.atleast_2d(y)
    if x.shape[1] != y.shape[1]:
        raise ConfigError(f"feature dimensions differ ({x.shape[1]} vs {y.shape[1]})")
    ux, zx = _unit(x)
    uy, zy = _unit(y)
    ux, uy = ux.astype(np.float64), uy.astype(np.float64)
    half = np.sqrt(((ux[:, None, :] - uy[None, :, :]) ** 2).sum(-1)) / 2
    d = 2 * np.arcsin(np.minimum(half, 1.0)) / math.pi
    d[zx[:, None] != zy[None, :]] = 0.5
    d[zx[:, None] & zy[None, :]] = 0.0
    return d


def dtw_distance(d: np.ndarray) -> float:
    """DTW over an (n, m) frame-distance matrix: the cheapest path from (0, 0) to (n−1, m−1)
    with moves (1, 1), (1, 0), (0, 1), its cost divided by its number of cells."""
    d = np.ascontiguousarray(d, dtype=np.float64)
    if d.ndim != 2 or d.size == 0:
        raise ConfigError(f"DTW needs a non-empty 2-D distance matrix, got shape {d.shape}")
    n, m = d.shape
    return float(_dtw_prefix(d, n, m, np.empty(m), np.empty(m, np.int64)))


def item_distance(x: np.ndarray, y: np.ndarray) -> float:
    """DTW distance between two items' frames (n, dim) and (m, dim)."""
    return dtw_distance(frame_distance(x, y))


def cell_error(d_ax: np.ndarray, d_bx: np.ndarray, exclude: np.ndarray | None = None) -> tuple[float, int]:
    """(error, triplets) of one cell from its distances d_ax (|A|, |X|) and d_bx (|B|, |X|).

    Each triplet (a, b, x) scores 1 if d(a, x) > d(b, x), 0.5 if equal, 0 otherwise;
    `exclude` (|A|, |X|) bool drops the (a, x) pairs that are the same item (within-speaker
    cells, where X = A: pass `np.eye(|A|, dtype=bool)`). Error NaN when no triplet remains.
    """
    d_ax, d_bx = np.atleast_2d(d_ax), np.atleast_2d(d_bx)
    ax, bx = d_ax[:, None, :], d_bx[None, :, :]
    score = (ax > bx) + 0.5 * (ax == bx)                      # (A, B, X)
    keep = np.ones(d_ax.shape, bool) if exclude is None else ~np.asarray(exclude, bool)
    keep = np.broadcast_to(keep[:, None, :], score.shape)
    count = int(keep.sum())
    return (float(score[keep].sum() / count) if count else math.nan), count


# ---------------------------------------------------------------- the fast path

@njit(fastmath=True, **_JIT)
def _frame_block(feats, zero, r0, n, c0, m, has_zero, d):
    """d[:n, :m] = angular distances between frames feats[r0:r0+n] and feats[c0:c0+m]."""
    dim = feats.shape[1]
    for i in range(n):
        for j in range(m):
            s = np.float32(0.0)
            for t in range(dim):
                e = feats[r0 + i, t] - feats[c0 + j, t]
                s += e * e
            d[i, j] = s
    for i in range(n):  # a separate loop, so that the one above vectorizes
        for j in range(m):
            d[i, j] = 2.0 * math.asin(min(0.5 * math.sqrt(d[i, j]), 1.0)) / math.pi
    if has_zero:
        for i in range(n):
            for j in range(m):
                if zero[r0 + i] or zero[c0 + j]:
                    d[i, j] = 0.0 if (zero[r0 + i] and zero[c0 + j]) else 0.5


@njit(**_JIT)
def _dtw_prefix(d, n, m, cost, length):
    """DTW (see `dtw_distance`) over d[:n, :m], with caller-provided row buffers."""
    cost[0], length[0] = d[0, 0], 1
    for j in range(1, m):
        cost[j], length[j] = cost[j - 1] + d[0, j], length[j - 1] + 1
    for i in range(1, n):
        diag, diag_len = cost[0], length[0]
        cost[0], length[0] = cost[0] + d[i, 0], length[0] + 1
        for j in range(1, m):
            up, up_len = cost[j], length[j]
            best, best_len = diag, diag_len
            if up < best:
                best, best_len = up, up_len
            if cost[j - 1] < best:
                best, best_len = cost[j - 1], length[j - 1]
            diag, diag_len = up, up_len
            cost[j], length[j] = best + d[i, j], best_len + 1
    return cost[m - 1] / length[m - 1]


@njit(parallel=True, **_JIT)
def _block_distances(feats, zero, item_zero, item_off, item_len, cat_start, cat_len, blk_c1, blk_c2,
                     blk_off, out):
    """Fill each block: all item distances between categories c1 ≤ c2 (row-major, c1 items as rows;
    for c1 == c2 the upper triangle is aligned and mirrored, the diagonal is 0)."""
    for b in prange(blk_c1.size):
        c1, c2 = blk_c1[b], blk_c2[b]
        n1, n2 = cat_len[c1], cat_len[c2]
        len1 = len2 = 1
        for i in range(n1):
            len1 = max(len1, item_len[cat_start[c1] + i])
        for j in range(n2):
            len2 = max(len2, item_len[cat_start[c2] + j])
        d = np.empty((len1, len2), np.float32)
        cost = np.empty(len2)
        length = np.empty(len2, np.int64)
        for i in range(n1):
            a = cat_start[c1] + i
            for j in range(n2):
                if c1 == c2 and j <= i:
                    if j == i:
                        out[blk_off[b] + i * n2 + j] = 0.0
                    continue
                x = cat_start[c2] + j
                _frame_block(feats, zero, item_off[a], item_len[a], item_off[x], item_len[x],
                             item_zero[a] or item_zero[x], d)
                dist = _dtw_prefix(d, item_len[a], item_len[x], cost, length)
                out[blk_off[b] + i * n2 + j] = dist
                if c1 == c2:
                    out[blk_off[b] + j * n2 + i] = dist


@njit(parallel=True, **_JIT)
def _score_cells(dist, cat_len, cell_a, cell_b, cell_x, ax_off, ax_t, bx_off, bx_t, within, err, count):
    """Error and triplet count of each cell (A, B, X categories; within: X = A and x ≠ a)."""
    for k in prange(cell_a.size):
        A, B, X = cell_a[k], cell_b[k], cell_x[k]
        na, nb, nx = cat_len[A], cat_len[B], cat_len[X]
        total, n = 0.0, 0
        for x in range(nx):
            for a in range(na):
                if within[k] and a == x:
                    continue
                # blocks keep the lower category as rows: (a, x) is at [a, x], or at [x, a] if A > X
                dax = dist[ax_off[k] + x * na + a] if ax_t[k] else dist[ax_off[k] + a * nx + x]
                for b in range(nb):
                    dbx = dist[bx_off[k] + x * nb + b] if bx_t[k] else dist[bx_off[k] + b * nx + x]
                    if dax > dbx:
                        total += 1.0
                    elif dax == dbx:
                        total += 0.5
                    n += 1
        err[k] = total / n if n else np.nan
        count[k] = n


# ---------------------------------------------------------------- the corpus

def _ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """[0..l0), [0..l1), ... concatenated."""
    lengths = np.asarray(lengths, np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total, dtype=np.int64) - starts


def _runs(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and length of each run of equal key tuples in already-sorted arrays."""
    n = keys[0].size
    change = np.zeros(n, bool)
    if n:
        change[0] = True
        for k in keys:
            change[1:] |= k[1:] != k[:-1]
    starts = np.flatnonzero(change)
    return starts, np.diff(np.append(starts, n))


def select_items(categories: np.ndarray, max_per_category: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of the items kept: at most `max_per_category` per category id, drawn at
    random (deterministic given `seed`); all of them when `max_per_category` is None."""
    categories = np.asarray(categories).reshape(-1)
    if max_per_category is None:
        return np.arange(categories.size)
    if max_per_category < 1:
        raise ConfigError(f"max_per_category must be at least 1, got {max_per_category}")
    draw = np.random.default_rng(seed).random(categories.size)
    order = np.lexsort((draw, categories))
    starts, lengths = _runs(categories[order])
    rank = _ragged_arange(lengths)
    return np.sort(order[rank < max_per_category])


def _group_mean(keys: list[np.ndarray], values: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Mean of `values` per distinct key tuple; returns the key columns and the means."""
    stacked = np.stack(keys, axis=1)
    uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    means = np.bincount(inverse, values) / np.bincount(inverse)
    return [uniq[:, i] for i in range(uniq.shape[1])], means


def average_cells(errors, speaker, p, q) -> float:
    """One error per cell → the score: the mean over the cells of each (A speaker, p, q), then
    over speakers, then over (p, q) pairs (see the module docstring). Within speakers the cells
    of a (speaker, p, q) are its contexts; across, its (context, X speaker) pairs, averaged
    together as ZeroSpeech 2021 and fastabx do."""
    if len(errors) == 0:
        return math.nan
    (s, p, q), e = _group_mean([speaker, p, q], np.asarray(errors, np.float64))
    (_, _), e = _group_mean([p, q], e)
    return float(e.mean())


def abx(features: Sequence[np.ndarray], intervals: Sequence[Sequence], speakers: Sequence,
        frame_rate: float, *, offsets: Sequence[float] | None = None, max_per_category: int | None = 10,
        max_x_speakers: int | None = 5, seed: int = 0, resamples: int = confidence.RESAMPLES) -> ABXResult:
    """Triphone ABX error of per-utterance features, within and across speakers.

    features[u]: (frames, dim) array of utterance u at `frame_rate` Hz (frame i centred at
    (i + 0.5) / frame_rate + offsets[u] seconds on the alignment timeline; offsets default 0);
    intervals[u]: its phone intervals; speakers[u]: its speaker. Codes are passed as their
    codeword vectors. See the module docstring for the definitions, the averaging order and
    the subsampling (`max_per_category`, `max_x_speakers`; None keeps everything), and
    `resamples` for the intervals (0: none).
    """
    t0 = time.perf_counter()
    if not (len(features) == len(intervals) == len(speakers)):
        raise ConfigError(f"{len(features)} feature arrays, {len(intervals)} interval lists and "
                          f"{len(speakers)} speakers: one of each per utterance")
    if offsets is not None and len(offsets) != len(features):
        raise ConfigError(f"{len(offsets)} offsets for {len(features)} utterances")
    if max_x_speakers is not None and max_x_speakers < 1:
        raise ConfigError(f"max_x_speakers must be at least 1, got {max_x_speakers}")
    # rows contiguous: gathering item frames from strided views (e.g. an encoder's transposed
    # batch) costs 3× the CPU time
    features = [np.ascontiguousarray(f) for f in features]
    dims = set()
    for u, f in enumerate(features):
        if np.ndim(f) != 2:
            raise ConfigError(f"features of utterance {u} have shape {np.shape(f)}; expected (frames, dim)"
                              " (pass codes as codeword vectors, codebook[codes])")
        dims.add(np.shape(f)[1])
    if len(dims) > 1:
        raise ConfigError(f"feature dimensions differ between utterances: {sorted(dims)}")

    items = triphone_items(intervals, speakers)
    starts, stops = item_frames(items, [len(f) for f in features], frame_rate, offsets)
    nonempty = np.flatnonzero(stops > starts)
    items = [items[i] for i in nonempty]
    starts, stops = starts[nonempty], stops[nonempty]
    n_total = len(items)

    def empty(reason: str) -> ABXResult:
        return ABXResult(math.nan, None, 0, 0, 0, time.perf_counter() - t0, 0, n_total, reason=reason)

    if n_total == 0:
        return empty("no triphone item (a phone with real phones on both sides covering a frame)")

    _, ph = np.unique(np.array([it.phone for it in items], dtype=object).astype(str), return_inverse=True)
    _, ctx = np.unique(np.array([f"{it.prev}\x00{it.next}" for it in items], dtype=object).astype(str),
                       return_inverse=True)
    spk_names, spk = np.unique(np.array([it.speaker for it in items], dtype=object).astype(str),
                               return_inverse=True)
    ph, ctx, spk = ph.reshape(-1), ctx.reshape(-1), spk.reshape(-1)

    # subsample per (context, speaker, phone) category
    _, cat_of_item = np.unique(np.stack([ctx, spk, ph], 1), axis=0, return_inverse=True)
    keep = select_items(cat_of_item.reshape(-1), max_per_category, seed)
    order = keep[np.lexsort((ph[keep], spk[keep], ctx[keep]))]   # items sorted by (ctx, spk, ph)
    ctx, spk, ph, starts, stops = ctx[order], spk[order], ph[order], starts[order], stops[order]
    utt = np.fromiter((items[i].utterance for i in order), np.int64, order.size)
    cat_start, cat_len = _runs(ctx, spk, ph)
    C = cat_start.size
    cat_ctx, cat_spk, cat_ph = ctx[cat_start], spk[cat_start], ph[cat_start]

    # the frames of the used items, unit length, one block
    item_len = stops - starts
    item_off = np.cumsum(item_len) - item_len
    frames = np.concatenate([np.asarray(features[u][a:b]) for u, a, b in zip(utt, starts, stops)])
    feats, zero = _unit(frames)
    del frames

    # within cells: A, B categories of the same (context, speaker) group, A ≠ B, |A| ≥ 2
    grp_start, grp_len = _runs(cat_ctx, cat_spk)
    grp_of_cat = np.repeat(np.arange(grp_start.size), grp_len)
    a = np.repeat(np.arange(C), grp_len[grp_of_cat])
    b = grp_start[grp_of_cat[a]] + _ragged_arange(grp_len[grp_of_cat])
    sel = (a != b) & (cat_len[a] >= 2)
    w_a, w_b = a[sel], b[sel]

    # across cells: X categories with A's (context, phone) from another speaker, ≤ max_x_speakers per A
    by_cp = np.lexsort((cat_spk, cat_ph, cat_ctx))
    cp_start, cp_len = _runs(cat_ctx[by_cp], cat_ph[by_cp])
    cp_of_pos = np.repeat(np.arange(cp_start.size), cp_len)
    cp_of_cat = np.empty(C, np.int64)
    cp_of_cat[by_cp] = cp_of_pos
    has_b = grp_len[grp_of_cat] >= 2
    a = np.repeat(np.arange(C), np.where(has_b, cp_len[cp_of_cat], 0))
    x = by_cp[cp_start[cp_of_cat[a]] + _ragged_arange(np.where(has_b, cp_len[cp_of_cat], 0))]
    sel = x != a
    a, x = a[sel], x[sel]
    if max_x_speakers is not None and a.size:
        draw = np.random.default_rng([seed, 1]).random(a.size)
        o = np.lexsort((draw, a))
        _, lens = _runs(a[o])
        kept = np.sort(o[_ragged_arange(lens) < max_x_speakers])
        a, x = a[kept], x[kept]
    nb = grp_len[grp_of_cat[a]]
    x_a, x_x = np.repeat(a, nb), np.repeat(x, nb)
    x_b = grp_start[grp_of_cat[x_a]] + _ragged_arange(nb)
    sel = x_b != x_a
    x_a, x_b, x_x = x_a[sel], x_b[sel], x_x[sel]

    cell_a = np.concatenate([w_a, x_a])
    cell_b = np.concatenate([w_b, x_b])
    cell_x = np.concatenate([w_a, x_x])
    is_within = np.concatenate([np.ones(w_a.size, bool), np.zeros(x_a.size, bool)])
    n_within, n_across = int(w_a.size), int(x_a.size)

    # distance blocks: one per unordered category pair needed (A, X) and (B, X)
    first = np.concatenate([cell_a, cell_b])
    second = np.concatenate([cell_x, cell_x])
    lo, hi = np.minimum(first, second), np.maximum(first, second)
    blk_keys, blk_of = np.unique(lo * C + hi, return_inverse=True)
    blk_of = blk_of.reshape(-1)
    blk_c1, blk_c2 = blk_keys // C, blk_keys % C
    blk_size = cat_len[blk_c1] * cat_len[blk_c2]
    blk_off = np.cumsum(blk_size) - blk_size
    dist = np.zeros(int(blk_size.sum()), np.float64)
    n_dist = int(((cat_len[blk_c1] * (cat_len[blk_c1] - 1)) // 2 * (blk_c1 == blk_c2)).sum()
                 + (blk_size * (blk_c1 != blk_c2)).sum())
    if blk_keys.size:
        item_zero = np.add.reduceat(zero, item_off) > 0
        _block_distances(feats, zero, item_zero, item_off, item_len, cat_start, cat_len, blk_c1, blk_c2,
                         blk_off, dist)

    k = cell_a.size
    ax_off, bx_off = blk_off[blk_of[:k]], blk_off[blk_of[k:]]
    ax_t, bx_t = cell_a > cell_x, cell_b > cell_x
    err = np.empty(k)
    count = np.zeros(k, np.int64)
    if k:
        _score_cells(dist, cat_len, cell_a, cell_b, cell_x, ax_off, ax_t, bx_off, bx_t, is_within, err, count)

    w = slice(0, n_within)
    within = average_cells(err[w], cat_spk[cell_a[w]], cat_ph[cell_a[w]], cat_ph[cell_b[w]])
    r = slice(n_within, k)
    reasons = []
    if n_within == 0:
        reasons.append("within: no (context, speaker) with two items of one triphone and one of another")
    if spk_names.size < 2:
        across = None
        reasons.append(f"across: only one speaker ({spk_names[0]})")
    elif n_across == 0:
        across = None
        reasons.append("across: no triphone shared by two speakers in a context where one of them has another")
    else:
        across = average_cells(err[r], cat_spk[cell_a[r]], cat_ph[cell_a[r]], cat_ph[cell_b[r]])
    t_within, t_across = int(count[w].sum()), int(count[r].sum())

    def interval(part: slice) -> tuple[float, float] | None:
        ci = confidence.abx_interval(err[part], cat_spk[cell_a[part]], cat_ph[cell_a[part]], cat_ph[cell_b[part]],
                                     resamples, seed)
        return None if ci is None else tuple(ci)

    return ABXResult(within, across, n_within, n_across, t_within + t_across, time.perf_counter() - t0,
                     int(order.size), n_total, t_within, t_across, n_dist, "; ".join(reasons),
                     interval(w), interval(r) if across is not None else None)


def summary_line(result: ABXResult, bitrate: float | None = None) -> str:
    """The challenge's summary: `ABX within 8.1% / across 10.3%, bitrate 412 bits/s`."""
    def pct(v):
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"
    line = f"ABX within {pct(result.within)} / across {pct(result.across)}"
    if bitrate is not None:
        line += f", bitrate {bitrate:.0f} bits/s"
    return line


def described_line(result: ABXResult, bitrate: float | None = None) -> str:
    """`summary_line` with how sure each score is: its interval, or, where it rests on too few
    triplets or cells, those counts instead (`confidence.describe_percent`)."""
    within = confidence.describe_percent(result.within, result.within_ci, result.triplets_within,
                                         result.cells_within)
    across = confidence.describe_percent(result.across, result.across_ci, result.triplets_across,
                                         result.cells_across)
    line = f"ABX within {within} / across {across}"
    if bitrate is not None:
        line += f", bitrate {bitrate:.0f} bits/s"
    return line
