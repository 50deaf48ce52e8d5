"""The code-analysis report: all metrics for one code stream, a table across methods, and plots.

A report is `{method name: evaluate_codes(...)}`; `format_table` prints one row per method and
`write_report` saves `report.json` (atomic), `table.txt` and, per method, the phone × code
co-occurrence matrix and the code-usage histogram as PNGs.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import re
from typing import Sequence

import numpy as np

from ..atomic import atomic_path, write_text
from ..errors import AudioVQError
from . import baselines, confidence, metrics

LEARNED, MFCC_KMEANS, RANDOM, MAJORITY = "learned codes", "MFCC k-means", "random", "majority"


def evaluate_codes(codes, phones, groups, speakers, code_rate: float, K: int,
                   phone_names: Sequence[str], resamples: int = confidence.RESAMPLES, seed: int = 0,
                   hold: int = 1) -> dict:
    """Every metric for one code stream, as a JSON-ready dict.

    codes (N,) in [0, K); phones (N,) in [0, len(phone_names)) (drop unlabelled frames first);
    groups (N,) utterance ids, each utterance's frames contiguous and in time order;
    speakers (N,) speaker ids or None (skips speaker leakage; so does a single speaker).
    Scalar entries are floats/ints (NaN where undefined); `contingency` (K × P counts) and
    `phone_names` are kept for the plots. Phone purity, cluster purity and PNMI carry a
    bootstrap interval over utterances (`<name>_ci`: [low, high], None with one utterance;
    `resamples` of them, seeded: `confidence.cluster_quality_intervals`).
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score  # slow to import

    codes, phones = metrics._pair(codes, phones)
    groups = np.asarray(groups).reshape(-1)
    if groups.shape != codes.shape:
        raise AudioVQError(f"groups and codes differ in length ({groups.size} vs {codes.size})")
    if codes.max() >= K:
        raise AudioVQError(f"code {codes.max()} is out of range for K={K}")
    if phones.max() >= len(phone_names):
        raise AudioVQError(f"phone id {phones.max()} is out of range for {len(phone_names)} phone names")
    table = metrics.contingency(codes, phones, K, len(phone_names))
    acc = metrics.mapping_accuracy(codes, phones, groups)
    quality = metrics.cluster_quality(codes, phones)
    usage = metrics.code_usage(codes, K, code_rate, groups, hold)  # (hold: `metrics.code_usage`)
    runs = metrics.run_lengths(codes, phones, groups, code_rate)
    out = {
        "frames": int(codes.size),
        "utterances": int(np.unique(groups).size),
        "phones": int((table.sum(0) > 0).sum()),
        "K": int(K),
        "code_rate": float(code_rate),
        "accuracy": acc.accuracy,
        "majority_accuracy": acc.majority_accuracy,
        "unseen_fraction": acc.unseen_fraction,
        "phone_purity": quality.phone_purity,
        "cluster_purity": quality.cluster_purity,
        "pnmi": quality.pnmi,
        **{f"{name}_ci": None if ci is None else list(ci) for name, ci in confidence.cluster_quality_intervals(
            codes, phones, groups, K, len(phone_names), resamples, seed).items()},
        "ari": float(adjusted_rand_score(phones, codes)),
        "nmi": float(normalized_mutual_info_score(phones, codes)),
        "codes_used": usage.used,
        "usage": usage.usage,
        "entropy_bits": usage.entropy_bits,
        "perplexity": usage.perplexity,
        "bitrate": usage.bitrate,
        "dedup_bitrate": usage.dedup_bitrate,
        "code_run_frames": runs.code_frames,
        "code_run_s": runs.code_seconds,
        "phone_run_frames": runs.phone_frames,
        "phone_run_s": runs.phone_seconds,
        "speaker_accuracy": math.nan,
        "speaker_chance": math.nan,
        "speaker_majority": math.nan,
        "speakers": 0,
    }
    if speakers is not None and np.unique(np.asarray(speakers)).size > 1:
        leak = metrics.speaker_leakage(codes, groups, speakers, K)
        out.update(speaker_accuracy=leak.accuracy, speaker_chance=leak.chance,
                   speaker_majority=leak.majority, speakers=leak.num_speakers)
    out["phone_names"] = list(phone_names)
    out["contingency"] = table.tolist()
    return out


def compare_methods(codes, phones, groups, speakers, code_rate: float, K: int,
                    phone_names: Sequence[str], mfcc: np.ndarray | None = None, seed: int = 0,
                    kmeans_iters: int = 30, hold: int = 1) -> dict[str, dict]:
    """The learned codes and their baselines on the same frames, ready for `format_table`.
    `hold`: the learned codes' code stride (each held over that many frames; their bitrate
    counts one symbol per hold frames, the baselines' one per frame).

    `mfcc` (N, 39) — `mfcc_frames` of each utterance, concatenated like the codes — adds the
    k-means row (same K, same frame rate); random codes use the same K; 'majority' is one code.
    """
    args = (phones, groups, speakers, code_rate)
    rows = {LEARNED: evaluate_codes(codes, *args, K, phone_names, hold=hold)}
    n = int(np.asarray(codes).size)
    if mfcc is not None:
        mfcc = np.asarray(mfcc)
        if mfcc.shape[0] != n:
            raise AudioVQError(f"MFCC frames ({mfcc.shape[0]}) do not match code frames ({n})")
        km = baselines.mfcc_kmeans_codes(mfcc, K, iters=kmeans_iters, seed=seed)
        rows[MFCC_KMEANS] = evaluate_codes(km, *args, K, phone_names)
    rows[RANDOM] = evaluate_codes(baselines.random_codes(n, K, seed), *args, K, phone_names)
    rows[MAJORITY] = evaluate_codes(baselines.constant_codes(n), *args, 1, phone_names)
    return rows


# (key, header, format) of the table columns; percentages for shares.
COLUMNS = [
    ("accuracy", "acc%", "{:.1%}"), ("majority_accuracy", "maj%", "{:.1%}"),
    ("phone_purity", "ph.pur", "{:.3f}"), ("cluster_purity", "cl.pur", "{:.3f}"),
    ("pnmi", "PNMI", "{:.3f}"), ("ari", "ARI", "{:.3f}"), ("nmi", "NMI", "{:.3f}"),
    ("codes_used", "used", "{:d}"), ("K", "K", "{:d}"), ("perplexity", "ppl", "{:.1f}"),
    ("entropy_bits", "H(bit)", "{:.2f}"), ("bitrate", "bit/s", "{:.0f}"),
    ("code_run_s", "run ms", "ms"), ("phone_run_s", "phone ms", "ms"),
    ("speaker_accuracy", "spk%", "{:.1%}"), ("speaker_chance", "spk chance%", "{:.1%}"),
    ("abx_within", "ABXw%", "{:.1%}"), ("abx_across", "ABXa%", "{:.1%}"),
]


def cell_text(value, fmt: str) -> str:
    """A table cell: the value in its COLUMNS format ("-" when undefined)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if fmt == "ms":
        return f"{value * 1000:.0f}"
    return fmt.format(value).replace("%", "")


def format_table(rows: dict[str, dict]) -> str:
    """One aligned text row per method with the headline metrics ('-' where undefined).

    Columns: mapping accuracy and majority baseline (%), phone/cluster purity, PNMI, ARI,
    NMI, codes used of K, perplexity (2^H), code entropy (bits), bitrate (bits/s, ZeroSpeech
    2019), mean code run and phone run (ms), speaker accuracy and its chance level (%), ABX
    within and across speakers (%; in parentheses, with a note below the table, where it rests
    on too few triplets or cells to mean anything: `confidence.enough`).
    """
    header = ["method"] + [h for _, h, _ in COLUMNS]
    body = [[name] + [_table_cell(m, key, fmt) for key, _, fmt in COLUMNS] for name, m in rows.items()]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    text = "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in body]) + "\n"
    if any(c.startswith("(") for r in body for c in r[1:]):
        text += (f"(…): ABX over fewer than {confidence.MIN_TRIPLETS} triplets or {confidence.MIN_CELLS} cells, "
                 "too few to mean anything\n")
    return text


def _table_cell(row: dict, key: str, fmt: str) -> str:
    text = cell_text(row.get(key), fmt)
    if key in ABX_KINDS and text != "-" and not abx_enough(row, key):
        return f"({text})"
    return text


ABX_KINDS = ("abx_within", "abx_across")


def abx_enough(row: dict, key: str) -> bool:
    """Does a row's ABX score `key` ("abx_within" or "abx_across") rest on enough triplets and
    cells to mean anything? (True for rows written before the counts were recorded.)"""
    kind = key.split("_", 1)[1]
    triplets, cells = row.get(f"abx_triplets_{kind}"), row.get(f"abx_cells_{kind}")
    return triplets is None or cells is None or confidence.enough(triplets, cells)


def format_intervals(rows: dict[str, dict]) -> str:
    """How sure the headline scores are, one line per method that has intervals: PNMI and
    phone and cluster purity with their bootstrap intervals over utterances (ABX: the pipeline's
    ABX lines)."""
    lines = []
    for name, m in rows.items():
        if "pnmi_ci" not in m:
            continue
        parts = [f"{label} {confidence.describe_number(m.get(key), m.get(f'{key}_ci'))}"
                 for key, label in (("pnmi", "PNMI"), ("phone_purity", "phone purity"),
                                    ("cluster_purity", "cluster purity"))]
        lines.append(f"{name}: {', '.join(parts)}")
    if not lines:
        return ""
    units = next(m.get("utterances") for m in rows.values() if "pnmi_ci" in m)
    return (f"{confidence.LEVEL:.0%} intervals (basic bootstrap over the {units:,} utterances, "
            f"{confidence.RESAMPLES} resamples; it takes off the upward bias of these scores on few data, so an "
            f"interval may lie below its figure: random codes' PNMI, truly 0, shows by how much):\n"
            + "\n".join(f"  {ln}" for ln in lines) + "\n")


def _json_safe(x):
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "method"


PAGE = "report.html"


def write_report(out_dir: str | os.PathLike, report: dict[str, dict], meta: dict | None = None,
                 heard: list[dict] | None = None, naming: dict | None = None) -> list[pathlib.Path]:
    """Save `report.json` ({"meta", "methods", "codes_heard", "speaker_naming"}; NaN → null),
    `table.txt`, per
    method with more than one code used `cooccurrence_<method>.png` and
    `code_usage_<method>.png`, and `report.html` (analysis/page.py), made from the same
    document as report.json. `heard`: the codes to hear (pipeline._hear_codes); `naming`: the
    speaker naming of seen and unseen speakers (speakers.speaker_naming).
    Every file is written atomically. Returns the paths written: report.json, table.txt, the
    plots, report.html."""
    from .page import write_page

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, plots = [], []
    for name, m in report.items():
        if "contingency" in m and m.get("codes_used", 0) > 1:
            table = np.asarray(m["contingency"])
            for kind, plot in (("cooccurrence", plot_cooccurrence), ("code_usage", plot_code_usage)):
                path = out / f"{kind}_{_slug(name)}.png"
                plot(path, table, m["phone_names"], title=name)
                written.append(path)
                plots.append({"method": name, "kind": kind, "file": path.name})
    from .speakers import format_naming
    naming_lines = "\n".join(format_naming(naming)) + "\n" if naming else ""
    write_text(out / "table.txt", format_table(report) + format_intervals(report) + naming_lines)
    doc = _json_safe({"meta": meta or {}, "methods": report, "codes_heard": heard or [],
                      "speaker_naming": naming or {}})
    write_text(out / "report.json", json.dumps(doc, indent=1, allow_nan=False) + "\n")
    page = write_page(out / PAGE, doc, plots)
    return [out / "report.json", out / "table.txt"] + written + [page]


def _figure(width: float, height: float):
    # A bare Figure with the Agg canvas: no pyplot, so no global backend or open-figure state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: pathlib.Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")


def sort_codes_by_phone(table: np.ndarray) -> np.ndarray:
    """Indices of the used codes (rows of a K × P table), grouped by dominant phone in phone
    order and, within a phone, most confident first."""
    table = np.asarray(table, dtype=np.float64)
    used = np.flatnonzero(table.sum(1) > 0)
    cond = table[used] / table[used].sum(1, keepdims=True)
    order = np.lexsort((-cond.max(1), cond.argmax(1)))
    return used[order]


def plot_cooccurrence(path, table, phone_names: Sequence[str], title: str = "") -> None:
    """PNG of p(phone | code): phones down, used codes across sorted by dominant phone."""
    table = np.asarray(table, dtype=np.float64)
    order = sort_codes_by_phone(table)
    cond = (table[order] / table[order].sum(1, keepdims=True)).T  # (P, used K)
    fig = _figure(min(16.0, max(6.0, 2.0 + order.size / 12)), min(14.0, max(4.0, 1.0 + len(phone_names) / 5)))
    ax = fig.add_subplot()
    im = ax.imshow(cond, aspect="auto", interpolation="nearest", cmap="magma_r", vmin=0.0, vmax=1.0)
    ax.set_yticks(np.arange(len(phone_names)), labels=list(phone_names), fontsize=7)
    ax.set_xlabel(f"code ({order.size} used of {table.shape[0]}), sorted by dominant phone")
    ax.set_ylabel("phone")
    ax.set_title(f"p(phone | code) — {title}" if title else "p(phone | code)")
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    _save(fig, pathlib.Path(path))


def plot_code_usage(path, table, phone_names: Sequence[str] = (), title: str = "") -> None:
    """PNG of frames per code, codes sorted from most to least used, log scale."""
    counts = np.sort(np.asarray(table).sum(1))[::-1]
    used = counts[counts > 0]
    h = metrics.entropy_bits(used)
    fig = _figure(7.0, 3.5)
    ax = fig.add_subplot()
    ax.bar(np.arange(1, used.size + 1), used, width=1.0, color="tab:blue", linewidth=0)
    ax.set_yscale("log")
    ax.set_xlim(0.5, counts.size + 0.5)
    ax.set_xlabel("code rank")
    ax.set_ylabel("frames")
    ax.set_title(f"code usage — {title}: {used.size}/{counts.size} used, perplexity {2 ** h:.1f}"
                 if title else f"code usage: {used.size}/{counts.size} used, perplexity {2 ** h:.1f}")
    _save(fig, pathlib.Path(path))
