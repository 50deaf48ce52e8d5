"""Praat TextGrid files: read interval tiers (long or short text format), write long format.

Montreal Forced Aligner writes one TextGrid per utterance with a ``words`` and a ``phones``
tier; the synthetic corpus writes the same. Reading works on a token stream (quoted strings,
numbers and ``<exists>`` flags, everything else skipped), which is how Praat's own text reader
sees a file, so the long format (``xmin = 0`` lines) and the short format (bare values) parse
with one code path. Point tiers (``TextTier``) are read past and left out of the result.
"""
from __future__ import annotations

import codecs
import math
import os
import pathlib
import re
import string
from typing import Iterator, NamedTuple

from ..atomic import atomic_path
from ..errors import AudioVQError


class Interval(NamedTuple):
    start: float  # seconds
    end: float
    label: str


# One token per match: a "string" (quotes doubled inside), an index like [3] (skipped),
# a <flag>, or a number. Anything between tokens (xmin =, item, intervals:) is a label.
_TOKEN = re.compile(r'"((?:[^"]|"")*)"|\[[^\]"]*\]|<(\w+)>|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)')


class _Tokens:
    """Typed reads from a TextGrid's token stream; errors name the file and what was expected."""

    def __init__(self, text: str, path: pathlib.Path):
        self.path = path
        self.items: Iterator[tuple[str, str]] = self._scan(text)

    @staticmethod
    def _scan(text: str) -> Iterator[tuple[str, str]]:
        for m in _TOKEN.finditer(text):
            if m.group(1) is not None:
                yield "str", m.group(1).replace('""', '"')
            elif m.group(2) is not None:
                yield "flag", m.group(2)
            elif m.group(3) is not None:
                yield "num", m.group(3)

    def _next(self, kind: str, what: str) -> str:
        got = next(self.items, None)
        if got is None:
            raise AudioVQError(f"{self.path}: malformed TextGrid (file ends where {what} was expected)")
        if got[0] != kind:
            raise AudioVQError(f"{self.path}: malformed TextGrid (expected {what}, found {got[1]!r})")
        return got[1]

    def string(self, what: str) -> str:
        return self._next("str", what)

    def flag(self, what: str) -> str:
        return self._next("flag", what)

    def number(self, what: str) -> float:
        x = float(self._next("num", what))
        if not math.isfinite(x):
            raise AudioVQError(f"{self.path}: malformed TextGrid ({what} is not finite)")
        return x

    def count(self, what: str) -> int:
        x = self.number(what)
        if x < 0 or x != int(x):
            raise AudioVQError(f"{self.path}: malformed TextGrid ({what} {x:g} is not a count)")
        return int(x)


def _decode(raw: bytes) -> str:
    """Praat writes ASCII/UTF-8, or UTF-16 (with a byte order mark) when a label needs it."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    if raw.startswith(codecs.BOM_UTF8):
        return raw[len(codecs.BOM_UTF8):].decode("utf-8")
    if len(raw) >= 2 and b"\x00" in raw[:2]:  # UTF-16 without a byte order mark
        return raw.decode("utf-16-le" if raw[1] == 0 else "utf-16-be")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # older Praat versions wrote Latin-1


def read_textgrid(path: str | os.PathLike) -> dict[str, list[Interval]]:
    """Interval tiers of a Praat TextGrid by tier name, each a list of `Interval` in file order.

    Accepts the long and short text formats in UTF-8 or UTF-16. Raises AudioVQError with a
    one-line message for a missing, unreadable or malformed file. Of two tiers with the same
    name the first is kept.
    """
    path = pathlib.Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AudioVQError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AudioVQError(f"{path}: is a directory, expected a TextGrid file") from None
    except OSError as e:
        raise AudioVQError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = _decode(raw)
    except UnicodeDecodeError:
        raise AudioVQError(f"{path}: not a TextGrid (undecodable UTF-16 text)") from None

    tok = _Tokens(text, path)
    if tok.string('"ooTextFile"') != "ooTextFile":
        raise AudioVQError(f"{path}: not a Praat text file (no 'File type = \"ooTextFile\"' header)")
    kind = tok.string('"TextGrid"')
    if kind != "TextGrid":
        raise AudioVQError(f"{path}: holds a Praat {kind!r} object, not a TextGrid")
    tok.number("xmin")
    tok.number("xmax")
    tiers: dict[str, list[Interval]] = {}
    if tok.flag("<exists> or <absent>") != "exists":
        return tiers
    for t in range(tok.count("tier count")):
        cls = tok.string(f"class of tier {t + 1}")
        name = tok.string(f"name of tier {t + 1}")
        tok.number(f"xmin of tier {name!r}")
        tok.number(f"xmax of tier {name!r}")
        n = tok.count(f"size of tier {name!r}")
        if cls == "IntervalTier":
            intervals = []
            for i in range(n):
                where = f"interval {i + 1} of tier {name!r}"
                start, end = tok.number(f"xmin of {where}"), tok.number(f"xmax of {where}")
                if end < start:
                    raise AudioVQError(f"{path}: malformed TextGrid ({where} ends before it starts)")
                intervals.append(Interval(start, end, tok.string(f"text of {where}")))
            tiers.setdefault(name, intervals)
        elif cls == "TextTier":
            for i in range(n):
                tok.number(f"time of point {i + 1} of tier {name!r}")
                tok.string(f"mark of point {i + 1} of tier {name!r}")
        else:
            raise AudioVQError(f"{path}: malformed TextGrid (unknown tier class {cls!r})")
    return tiers


def _num(x: float) -> str:
    """Shortest text that reads back as the same float (integers without a decimal point)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _quote(label: str) -> str:
    return '"' + label.replace('"', '""') + '"'


def write_textgrid(path: str | os.PathLike, tiers: dict[str, list[Interval]],
                   xmax: float | None = None) -> None:
    """Atomically write interval tiers as a long-format (UTF-8) TextGrid.

    The grid spans [0, xmax] (default: the latest interval end). Praat needs each tier to
    tile that span, so gaps before, between and after intervals are written as empty-label
    intervals. Raises AudioVQError for an interval that is empty, reversed, overlapping its
    predecessor or outside [0, xmax].
    """
    path = pathlib.Path(path)
    ends = [iv.end for ivs in tiers.values() for iv in ivs]
    if xmax is None:
        xmax = max(ends, default=0.0)
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "",
             "xmin = 0 ", f"xmax = {_num(xmax)} ", "tiers? <exists> ", f"size = {len(tiers)} ", "item []: "]
    for t, (name, intervals) in enumerate(tiers.items(), start=1):
        filled = _tile(path, name, intervals, float(xmax))
        lines += [f"    item [{t}]:", '        class = "IntervalTier" ', f"        name = {_quote(name)} ",
                  "        xmin = 0 ", f"        xmax = {_num(xmax)} ", f"        intervals: size = {len(filled)} "]
        for i, iv in enumerate(filled, start=1):
            lines += [f"        intervals [{i}]:", f"            xmin = {_num(iv.start)} ",
                      f"            xmax = {_num(iv.end)} ", f"            text = {_quote(iv.label)} "]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _tile(path: pathlib.Path, name: str, intervals: list[Interval], xmax: float) -> list[Interval]:
    out: list[Interval] = []
    t = 0.0
    for iv in intervals:
        start, end = float(iv.start), float(iv.end)
        if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
            raise AudioVQError(f"{path}: tier {name!r} has an empty or reversed interval {tuple(iv)}")
        if start < t or end > xmax:
            raise AudioVQError(f"{path}: tier {name!r} interval {tuple(iv)} overlaps its neighbour "
                               f"or lies outside [0, {xmax:g}]")
        if start > t:
            out.append(Interval(t, start, ""))
        out.append(Interval(start, end, str(iv.label)))
        t = end
    if t < xmax or not out:
        out.append(Interval(t, xmax, ""))
    return out


class Word(NamedTuple):
    start: int  # 0-based character index in the text
    label: str  # lower case, surrounding punctuation removed


def text_words(text: str) -> list[Word]:
    """The words of a text as the words tier labels them (whitespace-separated tokens)."""
    words = []
    for m in re.finditer(r"\S+", text):
        label = m.group().strip(string.punctuation).lower()
        if label:
            words.append(Word(m.start(), label))
    return words
