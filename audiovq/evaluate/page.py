"""The evaluation page (report.html): every conversion as a row to listen to and look at — the
source, its representation limit, a reference of the target speaker and the conversion, each
with a player and a spectrogram — beside its scores, sortable by any of them and filtered by
target speaker, under the summary that `audiovq evaluate` prints.

It is made from the report dict that `evaluate` returns and `write_json` saves (one source of
truth: each number cell carries the JSON's value in data-value, under its key in data-key).
Audio is linked where it lies, by a path relative to the page; spectrograms and nothing else
are written to `<page stem>_files/spectrograms/`. A file that is missing or unreadable is
marked in its cell, and a conversion that `evaluate` could not score is marked as a row.
"""
from __future__ import annotations

import os
import pathlib
from typing import NamedTuple

from .. import audio, webpage
from ..errors import AudioVQError
from .report import format_summary, json_safe
from .speaker import pitch_closer


class Column(NamedTuple):
    key: str      # dotted path into a report item ("heard.output.wer")
    header: str
    title: str    # what it measures (the header's tooltip)
    kind: str     # "num", "pct" or "bool"
    digits: int = 2


COLUMNS = [
    Column("sim_target", "sim→tgt", "cosine of GE2E speaker embeddings: conversion vs the target speaker's "
           "references", "num", 3),
    Column("sim_source", "sim→src", "cosine of GE2E speaker embeddings: conversion vs the source speaker's "
           "references", "num", 3),
    Column("closer_to_target", "closer", "the conversion is closer to the target speaker than to the source's", "bool"),
    Column("source_seen", "src seen", "the source's speaker is one the model trained on (a source of unknown "
           "speaker is not); the headline share is over the unseen ones", "bool"),
    Column("code_agreement", "codes kept", "frames whose re-encoded code equals the source's", "pct"),
    Column("mel_distance", "mel dB", "mean log-mel distance to the source along the DTW path", "num", 1),
    Column("loudness_diff_db", "ΔdB", "conversion RMS level − source RMS level", "num", 1),
    Column("f0_output", "F0 out", "median F0 (Hz) of the conversion", "num", 0),
    Column("f0_target", "F0 tgt", "median F0 (Hz) of the target speaker's references", "num", 0),
    Column("f0_source", "F0 src", "median F0 (Hz) of the source speaker's references", "num", 0),
    Column("pitch_closer", "F0 → tgt", "the conversion's median F0 is nearer the target's than the source's "
           "(– for speakers less than 2 semitones apart)", "bool"),
    Column("heard.output.wer", "WER out", "word error rate of the conversion", "num"),
    Column("heard.source.wer", "WER src", "word error rate of the source", "num"),
    Column("heard.limit.wer", "WER limit", "word error rate of the source's representation limit", "num"),
    Column("heard.output.ovrl", "OVRL out", "DNSMOS overall (1–5) of the conversion", "num"),
    Column("heard.source.ovrl", "OVRL src", "DNSMOS overall (1–5) of the source", "num"),
    Column("heard.limit.ovrl", "OVRL limit", "DNSMOS overall (1–5) of the representation limit", "num"),
    Column("heard.output.sig", "SIG out", "DNSMOS speech signal (1–5) of the conversion", "num"),
    Column("heard.output.bak", "BAK out", "DNSMOS background (1–5, higher: less noise) of the conversion", "num"),
]
DERIVED = {"pitch_closer"}  # computed here from the item's F0s, not a field of the JSON


def lookup(item: dict, key: str):
    """item["a"]["b"] for key "a.b"; None where any part is missing."""
    for part in key.split("."):
        if not isinstance(item, dict):
            return None
        item = item.get(part)
    return item


def _cell(item: dict, c: Column) -> dict:
    if c.key == "pitch_closer":
        fs = [item.get(k) for k in ("f0_output", "f0_target", "f0_source")]
        value = None if any(f is None for f in fs) else pitch_closer(*fs)
    else:
        value = lookup(item, c.key)
    if c.kind == "bool":
        text = "–" if value is None else ("yes" if value else "no")
    elif c.kind == "pct":
        text = webpage.percent(value)
    else:
        text = webpage.number(value, c.digits)
    return {"key": None if c.key in DERIVED else c.key, "value": webpage.data_value(value), "text": text,
            "title": None}  # the header says what it is: a title per cell would double the page


class Media:
    """Player descriptions for the page's audio files, each file looked at once: a file that
    cannot be read is described by its problem instead of a player; the others get a
    spectrogram unless asked not to."""

    def __init__(self, page_dir: pathlib.Path, thumbs: pathlib.Path):
        self.page_dir, self.thumbs = page_dir, thumbs
        self.seen: dict[str, dict] = {}

    def __call__(self, path: str | os.PathLike | None, thumbnail: bool = True) -> dict | None:
        if not path:
            return None
        key = str(path)
        if key not in self.seen:
            self.seen[key] = self._describe(pathlib.Path(path), thumbnail)
        return self.seen[key]

    def _describe(self, path: pathlib.Path, thumbnail: bool) -> dict:
        m = {"name": path.name, "url": webpage.link(path, self.page_dir), "thumb": None, "problem": None}
        try:
            rate = audio.info(path).sample_rate
            wav = audio.load(path, duration=webpage.SPEC_SECONDS) if thumbnail else None  # all it shows
        except AudioVQError as e:
            m["problem"] = str(e)
            m["label"] = "missing" if not path.exists() else "unreadable"
            return m
        if wav is not None:
            t = webpage.spectrogram(wav, rate, self.thumbs / f"{len(self.seen):04d}_{path.stem}.png")
            m.update(thumb=webpage.link(t.path, self.page_dir), width=t.width, height=t.height)
        return m


def rows(report: dict, media: Media) -> list[dict]:
    """One row per conversion, scored ones then those `evaluate` could not score, in
    conversions.json order within each."""
    refs = report.get("references") or {}
    out = []
    for item in report["items"]:
        recognised = lookup(item, "heard.output.wer") is not None
        out.append({"target": item["target"], "problem": None,
                    "source": media(item.get("source")), "limit": media(item.get("limit_audio"), thumbnail=False),
                    "reference": media((refs.get(item["target"]) or [None])[0]), "output": media(item["output"]),
                    "cells": [_cell(item, c) for c in COLUMNS], "text": item.get("text"),
                    "heard": (lookup(item, "heard.output.hypothesis") or "") if recognised else None})
    for f in report.get("failed") or []:
        out.append({"target": f["target"], "problem": f["error"], "source": media(f.get("source")), "limit": None,
                    "reference": media((refs.get(f["target"]) or [None])[0]), "output": media(f.get("output")),
                    "cells": [], "text": None, "heard": None})
    for i, r in enumerate(out, 1):
        r["index"] = i
    return out


def write_page(path: str | os.PathLike, report: dict, checkpoint: str = "", json_name: str = "evaluation.json",
               title: str | None = None) -> pathlib.Path:
    """Write the page for `report` (what `evaluate` returns) to `path` and its spectrograms
    to `<stem>_files/spectrograms/` beside it; returns the page's path."""
    path = pathlib.Path(path)
    thumbs = webpage.files_dir(path) / "spectrograms"
    thumbs.mkdir(parents=True, exist_ok=True)
    for old in thumbs.glob("*.png"):  # thumbnails of an earlier page: their names may now mean other files
        old.unlink()
    report = json_safe(report)
    media = Media(path.parent, thumbs)
    table = rows(report, media)
    players = sum(r[k] is not None and not r[k]["problem"] for r in table
                  for k in ("source", "limit", "reference", "output"))
    eager = players <= webpage.EAGER_PLAYERS
    return webpage.write_page(
        path, "evaluation.html.j2", title=title or f"Conversions in {path.parent.name or path.parent}",
        summary="\n".join(format_summary(report)), rows=table, columns=COLUMNS,
        targets=sorted({r["target"] for r in table}), failed=len(report.get("failed") or []),
        players=players, eager=eager, preload="metadata" if eager else "none", lazy=not eager,
        checkpoint=checkpoint or "–", json_name=json_name, spec_rate=webpage.SPEC_RATE, spec_db=webpage.SPEC_DB,
        spec_seconds=webpage.SPEC_SECONDS)
