"""The code-analysis page (report.html): the table of every method with the intervals of its
phone/code scores, ABX with its counts (and a plain statement where a score rests on too
few comparisons), the plots, and "hear a code" — players of the most used codes' (and the
asked codes') occurrences beside the phones each co-occurs with most.

Made from the document that report.json holds (`report.write_report` passes the same dict);
each number cell carries the JSON's value in data-value under its key in data-key.
"""
from __future__ import annotations

import os
import pathlib

from .. import webpage
from . import confidence, hear
from .report import COLUMNS, abx_enough, cell_text

INTERVALS = ("phone_purity", "cluster_purity", "pnmi")  # columns shown with their bootstrap interval


def _method_cells(row: dict) -> list[dict]:
    cells = []
    for key, header, fmt in COLUMNS:
        value = row.get(key)
        text = cell_text(value, fmt)
        title, note = header, ""
        if key in INTERVALS and row.get(f"{key}_ci"):
            low, high = row[f"{key}_ci"]
            note = f"[{low:.3f}–{high:.3f}]"
            title = f"{header}: {confidence.LEVEL:.0%} interval {note} (bootstrap over utterances)"
        if key.startswith("abx_") and text != "-" and not abx_enough(row, key):
            kind = key.split("_", 1)[1]
            text, title = f"({text})", confidence.too_few(row[f"abx_triplets_{kind}"], row[f"abx_cells_{kind}"])
        cells.append({"key": key, "value": webpage.data_value(value), "text": text, "note": note, "title": title})
    return cells


def _abx_rows(methods: dict) -> list[dict]:
    out = []
    for name, row in methods.items():
        if "abx_within" not in row:
            continue
        described = {kind: confidence.describe_percent(
            row.get(f"abx_{kind}"), row.get(f"abx_{kind}_ci"),
            row.get(f"abx_triplets_{kind}"), row.get(f"abx_cells_{kind}")) for kind in ("within", "across")}
        out.append({"name": name, "within": row.get("abx_within"), "across": row.get("abx_across"),
                    "within_text": described["within"], "across_text": described["across"],
                    **{k: row.get(f"abx_{k}") for k in ("items", "items_total", "triplets_within", "triplets_across",
                                                        "cells_within", "cells_across", "seconds", "note")}})
    return out


def _naming_rows(naming: dict) -> list[dict]:
    """The speaker-naming table: one row per population (speakers.speaker_naming); "key" and
    "chance_key": the figures' paths under report.json's "speaker_naming"."""
    out = []
    for key, label in (("seen", "speakers the model trained on"), ("unseen", "speakers it never heard")):
        r = naming.get(key)
        if r is not None:
            out.append({"key": f"{key}.accuracy", "chance_key": f"{key}.chance", "label": label, "accuracy": r["accuracy"], "chance": r["chance"],
                        "text": confidence.describe_percent(r["accuracy"], r["interval"]),
                        "speakers": r["speakers"], "utterances": r["utterances"]})
    m = naming.get("matched")
    for key, label in (("seen", "trained-on speakers"), ("unseen", "never-heard speakers")) if m else ():
        out.append({"key": f"matched.{key}", "chance_key": "matched.chance", "label": f"{label} on equal terms: {m['speakers']} at a time, "
                    f"{m['per_speaker']} utterances each (mean of {m['draws']} draws)", "accuracy": m[key],
                    "chance": m["chance"], "text": f"{100 * m[key]:.1f}%", "speakers": m["speakers"],
                    "utterances": m["speakers"] * m["per_speaker"]})
    return out


def _heard_rows(heard: list[dict], page_dir: pathlib.Path) -> list[dict]:
    out = []
    for h in heard:
        clip = None
        if h.get("audio"):
            clip = {"name": f"code {h['code']}", "url": webpage.link(page_dir / h["audio"], page_dir),
                    "problem": None, "thumb": None}
            if h.get("spectrogram"):
                clip["thumb"] = webpage.link(page_dir / h["spectrogram"], page_dir)
        out.append(dict(h, clip=clip, top_phone=h["phones"][0][0] if h["phones"] else "",
                        top_share=h["phones"][0][1] if h["phones"] else None))
    return out


def write_page(path: str | os.PathLike, doc: dict, plots: list[dict]) -> pathlib.Path:
    """Write the page of `doc` ({"meta", "methods", "codes_heard"}, as in report.json) to
    `path`; `plots`: [{"method", "kind", "file"}] beside it."""
    path = pathlib.Path(path)
    meta, methods = doc.get("meta") or {}, doc["methods"]
    heard = _heard_rows(doc.get("codes_heard") or [], path.parent)
    players = sum(h["clip"] is not None for h in heard)
    eager = players <= webpage.EAGER_PLAYERS
    return webpage.write_page(
        path, "analysis.html.j2", title=f"Code analysis: {meta.get('checkpoint') or path.parent.name}",
        meta=meta, columns=COLUMNS, methods=[{"name": n, "cells": _method_cells(r)} for n, r in methods.items()],
        abx=_abx_rows(methods), heard=heard, naming=_naming_rows(doc.get("speaker_naming") or {}), plots=plots, preload="metadata" if eager else "none", lazy=not eager,
        level=confidence.LEVEL, resamples=confidence.RESAMPLES, min_triplets=confidence.MIN_TRIPLETS,
        min_cells=confidence.MIN_CELLS,
        clip={"occurrences": hear.MAX_OCCURRENCES, "gap_ms": round(1000 * hear.GAP_SECONDS),
              "max_run_ms": round(1000 * hear.MAX_RUN_SECONDS)})
