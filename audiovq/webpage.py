"""The report pages (`audiovq evaluate`'s and `audiovq analyze`'s report.html): pages that work
opened from disk, with no server, no network and nothing fetched from elsewhere.

Pages are Jinja2 templates shipped in `audiovq/templates/` (base.html.j2 holds the style and
the small script that sorts tables and filters rows). Audio and images are separate files
linked by paths relative to the page (`link`), so a page of hundreds of rows stays small; the
page's own files go to `<page stem>_files/` beside it. Spectrogram thumbnails (`spectrogram`)
share one frequency axis and one dB scale, so that two of them can be compared by eye.
"""
from __future__ import annotations

import os
import pathlib
import urllib.parse
from typing import NamedTuple

import numpy as np

from . import audio
from .atomic import atomic_path, write_text

# spectrogram thumbnails: log-mel power at SPEC_RATE, 10-ms hops, in dB relative to a full-scale
# sine, drawn from SPEC_DB[0] (black) to SPEC_DB[1]; at most SPEC_SECONDS of a file
SPEC_RATE = 16000
SPEC_MELS = 64
SPEC_DB = (-100.0, -10.0)
SPEC_SECONDS = 20.0
# pages with more players than this load no audio until it is played: Chromium refuses to keep
# more than about 1,000 media players per page, and loading hundreds of them slows the opening
EAGER_PLAYERS = 200


def environment():
    """The Jinja2 environment of the templates (HTML-escaped, undefined names are errors)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("audiovq", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = number
    env.filters["pct"] = percent
    env.filters["value"] = data_value
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


def write_page(path: str | os.PathLike, template: str, **context) -> pathlib.Path:
    """Render `template` into `path` (atomically); returns the path."""
    path = pathlib.Path(path)
    write_text(path, render(template, **context))
    return path


def files_dir(page: str | os.PathLike) -> pathlib.Path:
    """The folder of a page's own files: `<stem>_files/` beside it."""
    page = pathlib.Path(page)
    return page.parent / f"{page.stem}_files"


def link(target: str | os.PathLike, page_dir: str | os.PathLike) -> str:
    """URL of `target` relative to the folder of a page (percent-encoded: spaces, '#', '?')."""
    rel = os.path.relpath(os.path.abspath(target), os.path.abspath(page_dir))
    return urllib.parse.quote(pathlib.Path(rel).as_posix())


# ------------------------------------------------------------------------------- numbers in cells

def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and not np.isfinite(x))


def number(x, digits: int = 2) -> str:
    """A number for a cell ('–' when missing)."""
    return "–" if _missing(x) else f"{x:.{digits}f}"


def percent(x, digits: int = 1) -> str:
    """A share as a percentage ('–' when missing)."""
    return "–" if _missing(x) else f"{100 * x:.{digits}f}%"


def data_value(x) -> str:
    """A cell's sort key and the exact number behind it: repr of a float (round-trips), '' when
    missing (sorted last)."""
    if _missing(x):
        return ""
    if isinstance(x, bool):
        return str(int(x))
    return repr(float(x)) if isinstance(x, (int, float, np.generic)) else str(x)


# ---------------------------------------------------------------------------------- spectrograms

def log_mel_db(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """(mels, frames) log-mel power in dB re a full-scale sine, at SPEC_RATE, low bands first."""
    import librosa

    x = audio.resample(np.asarray(wav, np.float32), sample_rate, SPEC_RATE)[: int(SPEC_SECONDS * SPEC_RATE)]
    n_fft, hop = 512, SPEC_RATE // 100
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann, as librosa's "hann"
    spec = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, window="hann")) / (window.sum() / 2)
    mel = librosa.filters.mel(sr=SPEC_RATE, n_fft=n_fft, n_mels=SPEC_MELS, norm=None)  # peak 1: a sine keeps its power
    return 10 * np.log10(np.maximum(mel @ spec ** 2, 1e-12))


class Thumbnail(NamedTuple):
    path: pathlib.Path
    width: int   # pixels (frames)
    height: int  # pixels (mel bands)


def spectrogram(wav: np.ndarray, sample_rate: int, path: str | os.PathLike) -> Thumbnail:
    """Write the log-mel spectrogram of wav (T,) as a PNG (one pixel per band and 10 ms,
    SPEC_DB scale, low frequencies at the bottom)."""
    from matplotlib.image import imsave

    db = log_mel_db(wav, sample_rate)
    if db.shape[1] == 0:
        db = np.full((SPEC_MELS, 1), SPEC_DB[0])
    path = pathlib.Path(path)
    with atomic_path(path) as tmp:
        imsave(tmp, db[::-1], cmap="magma", vmin=SPEC_DB[0], vmax=SPEC_DB[1], format="png")
    return Thumbnail(path, int(db.shape[1]), int(db.shape[0]))
