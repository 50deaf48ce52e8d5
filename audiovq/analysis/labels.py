"""Phone labels for code frames: normalise aligner labels and read the phone under each frame.

Labels come from TextGrid interval tiers (`audiovq.data.alignments.read_textgrid`); any object
with `.start`, `.end` (seconds) and `.label` works here, so nothing in this module reads files
except `load_phone_mapping`.

Normalisation makes one corpus's labels comparable across aligners and alphabets:
stress digits and IPA stress/length marks are dropped (`AH0`→`AH`, `aː`→`a`), every
silence/pause spelling becomes `sil`, plain-ASCII labels are upper-cased (ARPAbet is
conventionally upper case; TIMIT and Buckeye write it lower case), and an optional mapping
folds the result further (e.g. TIMIT 61 → 39 classes).
"""
from __future__ import annotations

import os
import pathlib
import re
from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from ..errors import AudioVQError, ConfigError

SILENCE = "sil"
OUTSIDE = "<outside>"  # a frame whose centre lies beyond the aligned stretch of the utterance

# Spellings of silence, pause and non-speech used by MFA, Kaldi, TIMIT and Praat (compared
# case-insensitively). `spn` (spoken noise) and `epi` (TIMIT epenthetic silence) carry no phone.
SILENCE_LABELS = frozenset({"", "sil", "sp", "spn", "<eps>", "pau", "h#", "_", "epi", "silence", "<sil>"})

_STRESS_DIGITS = re.compile(r"\d+$")
_MARKS = re.compile("[\u02c8\u02cc\u02d0\u02d1:]")  # ˈ ˌ (stress) ː ˑ : (length)


def normalize_phone(label: str, mapping: Mapping[str, str] | None = None, *, upper: bool = True) -> str:
    """One aligner label → its phone class.

    Silence spellings (`SILENCE_LABELS`, any case) → `"sil"`; trailing stress digits and IPA
    stress/length marks are removed; a label that is plain ASCII afterwards is upper-cased
    (so `ah0`, `AH1` and `AH` agree, and IPA `aː` and `a` both become `A`; pass
    `upper=False` to keep case, e.g. for an IPA tier: `aː` → `a`). A label that strips to
    nothing is silence. Finally `mapping` (keys and values normalised the same way, see
    `load_phone_mapping`) folds the class; labels not in it are kept.
    """
    raw = label.strip()
    if raw.lower() in SILENCE_LABELS:
        return SILENCE
    phone = _MARKS.sub("", _STRESS_DIGITS.sub("", raw))
    if not phone or phone.lower() in SILENCE_LABELS:
        return SILENCE
    if upper and phone.isascii():
        phone = phone.upper()
    if mapping:
        phone = mapping.get(phone, phone)
    return phone


def load_phone_mapping(path: str | os.PathLike, *, upper: bool = True) -> dict[str, str]:
    """Read a folding table: one `FROM TO` pair per line, `#` starts a comment.

    Both columns are passed through `normalize_phone` (with the same `upper`), so a table
    written in lower case, with stress digits or with `pau`/`h#` targets still applies to
    normalised labels. Raises ConfigError for a missing file, a line without exactly two
    columns, or a label mapped to two different classes.
    """
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: phone mapping file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read phone mapping ({type(e).__name__})") from None
    mapping: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ConfigError(f"{path}:{number}: expected two columns 'FROM TO', got {len(fields)}")
        source, target = (normalize_phone(f, upper=upper) for f in fields)
        if mapping.get(source, target) != target:
            raise ConfigError(f"{path}:{number}: {fields[0]!r} is mapped to both "
                              f"{mapping[source]!r} and {target!r}")
        mapping[source] = target
    return mapping


def normalize_intervals(intervals: Iterable, mapping: Mapping[str, str] | None = None,
                        *, upper: bool = True) -> list:
    """The same intervals with each label passed through `normalize_phone`."""
    return [iv._replace(label=normalize_phone(iv.label, mapping, upper=upper)) if hasattr(iv, "_replace")
            else type(iv)(iv.start, iv.end, normalize_phone(iv.label, mapping, upper=upper))
            for iv in intervals]


def phone_tier(tiers: Mapping[str, list], source: str = "TextGrid") -> list:
    """Pick the phone tier of a TextGrid: a tier named like `phones` (MFA also writes
    `<speaker> - phones`), or the only tier. Raises AudioVQError naming the tiers otherwise."""
    names = list(tiers)
    phones = [n for n in names if "phone" in n.lower()]
    if len(phones) == 1:
        return tiers[phones[0]]
    if not phones and len(names) == 1:
        return tiers[names[0]]
    raise AudioVQError(f"{source}: cannot tell which tier holds phones (tiers: {', '.join(names) or 'none'})")


class LabelledFrames(NamedTuple):
    labels: np.ndarray  # (num_frames,) str objects; OUTSIDE where no interval covers the frame centre
    times: np.ndarray   # (num_frames,) frame centres on the TextGrid timeline, seconds
    num_outside: int    # frames before the first or after the last interval
    num_gap: int        # frames in a hole between intervals (labelled as silence)

    @property
    def inside(self) -> np.ndarray:
        """(num_frames,) bool: frames that have a label."""
        return self.labels != OUTSIDE


def frame_labels(intervals: Sequence, num_frames: int, frame_rate: float, offset: float = 0.0,
                 silence: str = SILENCE) -> LabelledFrames:
    """The label under each code frame's centre.

    Frame i covers [i, i+1) / frame_rate seconds of the (trimmed) audio the codes were computed
    from; its centre `(i + 0.5) / frame_rate + offset` is looked up on the TextGrid timeline
    (`offset` = seconds cut from the start of the audio before encoding). An interval owns
    [start, end), so a centre on a boundary belongs to the later interval. Centres before the
    first or at/after the last interval get `OUTSIDE` (counted in `num_outside`); centres in a
    hole between intervals — a TextGrid tier has none, so a hole is a dropped empty interval —
    get `silence` (counted in `num_gap`). Works at any frame rate, including fractional ones.
    """
    if not frame_rate > 0:
        raise ConfigError(f"frame rate must be positive, got {frame_rate}")
    if num_frames < 0:
        raise ConfigError(f"number of frames must be non-negative, got {num_frames}")
    times = (np.arange(num_frames) + 0.5) / float(frame_rate) + offset
    labels = np.full(num_frames, OUTSIDE, dtype=object)
    ivs = sorted((iv for iv in intervals if iv.end > iv.start), key=lambda iv: iv.start)
    if not ivs or num_frames == 0:
        return LabelledFrames(labels, times, num_frames, 0)
    starts = np.array([iv.start for iv in ivs], dtype=np.float64)
    ends = np.array([iv.end for iv in ivs], dtype=np.float64)
    names = np.array([iv.label for iv in ivs], dtype=object)
    k = np.searchsorted(starts, times, side="right") - 1  # last interval starting at or before t
    within = (k >= 0) & (times < ends[np.maximum(k, 0)])
    labels[within] = names[k[within]]
    gap = ~within & (times >= starts[0]) & (times < ends.max())
    labels[gap] = silence
    return LabelledFrames(labels, times, int((~within & ~gap).sum()), int(gap.sum()))


class EncodedPhones(NamedTuple):
    ids: np.ndarray   # (N,) int64 index into names; -1 for OUTSIDE
    names: list[str]  # phone names, sorted, silence included if present


def encode_phones(labels: Sequence[str] | np.ndarray, names: Sequence[str] | None = None) -> EncodedPhones:
    """Phone strings → integer ids (OUTSIDE → -1).

    Without `names` the inventory is the sorted set of labels seen. With `names`, a label not
    in it raises AudioVQError (e.g. a mapping that does not cover the corpus).
    """
    labels = np.asarray(labels, dtype=object).reshape(-1)
    if names is None:
        names = sorted({str(x) for x in labels} - {OUTSIDE})
    names = list(names)
    index = {n: i for i, n in enumerate(names)}
    index[OUTSIDE] = -1
    try:
        ids = np.fromiter((index[x] for x in labels), dtype=np.int64, count=labels.size)
    except KeyError as e:
        raise AudioVQError(f"phone {e.args[0]!r} is not in the phone set ({len(names)} phones)") from None
    return EncodedPhones(ids, names)
