"""Does a conversion sound like its target? "Closer to target" — the output's GE2E similarity to
the target's references exceeds its similarity to the source speaker's — as a share of pairs,
by kind of pair, with a bootstrap interval.

Kinds of pair:
- the source: *seen* when its speaker is in the model's speaker table (the model trained on
  that voice), *unseen* otherwise — a held-out speaker of the corpus, an extra voice, or any
  file whose speaker is unknown. A user converts voices the model never heard, so the unseen
  figure is the headline (`HEADLINE`).
- the genders: *same-gender* or *cross-gender* when both speakers' genders are known
  (manifest or the model's speaker table), else *unknown*. Cross-gender pairs are the easy
  ones: pitch alone moves most of the way.

Intervals (`confidence.share_interval`, the seeded basic bootstrap of the code analysis):
whether a conversion lands depends mostly on the source voice (issue #26: 100% from espeak
voices to p225, 15% from voices of real recordings, same model), so pairs of one source speaker
are far from independent. The units resampled are therefore the *source speakers* where a group
has at least `MIN_SPEAKER_UNITS` of them; with fewer, a bootstrap over so few clusters gives
intervals much too narrow and jumpy, and the units are the *source utterances* (every target
of one utterance kept together) — narrower than the truth when few voices make up the group,
which is why each group says which units it used and how many. A file whose speaker is unknown
counts as its own speaker.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable, NamedTuple

import numpy as np

from ..analysis import confidence

MIN_SPEAKER_UNITS = 10  # source speakers a group needs to be resampled by speaker (module docstring)
SAME, CROSS, UNKNOWN = "same-gender", "cross-gender", "unknown gender"
HEADLINE = "unseen sources"
# group name → test on (seen, pairing); in the order reports print them, the headline first
GROUPS: dict[str, Callable[[bool | None, str], bool]] = {
    HEADLINE: lambda seen, pairing: seen is False,
    "seen sources": lambda seen, pairing: seen is True,
    "all": lambda seen, pairing: True,
    SAME: lambda seen, pairing: pairing == SAME,
    CROSS: lambda seen, pairing: pairing == CROSS,
    UNKNOWN: lambda seen, pairing: pairing == UNKNOWN,
    f"unseen, {SAME}": lambda seen, pairing: seen is False and pairing == SAME,
    f"unseen, {CROSS}": lambda seen, pairing: seen is False and pairing == CROSS,
    f"unseen, {UNKNOWN}": lambda seen, pairing: seen is False and pairing == UNKNOWN,
}


class PairKind(NamedTuple):
    seen: bool | None  # the source speaker is one the model trained on; None: the model's speakers are unknown
    pairing: str       # SAME, CROSS or UNKNOWN


class Share(NamedTuple):
    pairs: int                            # conversions in the group
    closer: int                           # … that landed closer to the target
    share: float                          # closer / pairs (NaN for none)
    interval: confidence.Interval | None  # LEVEL bootstrap interval; None with fewer than 2 units
    units: str                            # what was resampled: "source speakers" or "source utterances"
    unit_count: int                       # how many of them


def gender(value) -> str | None:
    """"F" or "M" from a speaker table's gender ("F", "female", "m", …); None when unknown."""
    g = str(value or "").strip()[:1].upper()
    return g if g in ("F", "M") else None


def speaker_genders(manifest=None, model_speakers: Iterable[dict] = ()) -> dict[str, str]:
    """{speaker id: "F" | "M"} from the model's speaker table and the manifest (the model's
    table wins where both know a speaker); speakers of unknown gender are left out."""
    out = {}
    for s in manifest.speakers if manifest is not None else ():
        if gender(s.gender):
            out[s.id] = gender(s.gender)
    for s in model_speakers or ():
        if gender(s.get("gender")):
            out[s["id"]] = gender(s.get("gender"))
    return out


def pair_kind(source_speaker: str | None, target: str, model_speakers: set[str] | None,
              genders: dict[str, str]) -> PairKind:
    """The kind of a (source speaker, target speaker) pair. `model_speakers`: the ids the model
    trained on (None: unknown, so `seen` is None); a source of unknown speaker is unseen."""
    seen = None if model_speakers is None else source_speaker in model_speakers
    a, b = genders.get(source_speaker) if source_speaker else None, genders.get(target)
    return PairKind(seen, UNKNOWN if a is None or b is None else SAME if a == b else CROSS)


def closer_share(items: list[dict], resamples: int = confidence.RESAMPLES, seed: int = 0,
                 level: float = confidence.LEVEL) -> Share:
    """The share of `items` (evaluate's scored conversions: "closer_to_target", "source",
    "source_speaker") closer to their target, with its interval over the units the module
    docstring names."""
    if not items:
        return Share(0, 0, float("nan"), None, "source utterances", 0)
    speakers = {i.get("source_speaker") or f"file:{i.get('source')}" for i in items}
    by_speaker = len(speakers) >= MIN_SPEAKER_UNITS
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # unit → [closer, pairs]
    for i in items:
        unit = (i.get("source_speaker") or f"file:{i.get('source')}") if by_speaker else str(i.get("source"))
        counts[unit][0] += bool(i["closer_to_target"])
        counts[unit][1] += 1
    closer, pairs = np.array(list(counts.values())).T
    return Share(int(pairs.sum()), int(closer.sum()), float(closer.sum() / pairs.sum()),
                 confidence.share_interval(closer, pairs, resamples, seed, level),
                 "source speakers" if by_speaker else "source utterances", len(counts))


def closer_by_kind(items: list[dict], resamples: int = confidence.RESAMPLES, seed: int = 0) -> dict[str, dict]:
    """{group: Share as a dict} for the GROUPS that have pairs, in GROUPS order. Each item needs
    "source_seen" and "gender_pairing" (`annotate`) besides `closer_share`'s keys."""
    out = {}
    for name, keep in GROUPS.items():
        chosen = [i for i in items if keep(i.get("source_seen"), i.get("gender_pairing", UNKNOWN))]
        if chosen or name == HEADLINE:  # the headline is always there, if only to say it is missing
            s = closer_share(chosen, resamples, seed)
            out[name] = dict(s._asdict(), interval=None if s.interval is None else list(s.interval))
    if not any(i.get("source_seen") is not None for i in items):
        out.pop(HEADLINE)  # the model's speakers are unknown: nothing to say about seen or unseen
    return out


def annotate(items: list[dict], model_speakers: set[str] | None, genders: dict[str, str]) -> None:
    """Add each item's kind of pair: "source_seen" (bool or None) and "gender_pairing"."""
    for i in items:
        k = pair_kind(i.get("source_speaker"), i["target"], model_speakers, genders)
        i["source_seen"], i["gender_pairing"] = k.seen, k.pairing


def describe(group: dict) -> str:
    """'43.0% [30.2–55.1] of 63 pairs (27 closer; interval over 9 source utterances)'."""
    if not group["pairs"]:
        return "no pairs"
    text = confidence.describe_percent(group["share"], group["interval"])
    unit = group["units"].split()[-1].rstrip("s")
    note = (f"interval over {group['unit_count']} {group['units']}" if group["interval"] is not None
            else f"no interval from one {unit}")
    if group["interval"] is not None and group["closer"] in (0, group["pairs"]):
        note += ": every pair agrees, so every resample does"
    return f"{text} of {group['pairs']} pairs ({group['closer']} closer; {note})"


def headline(groups: dict[str, dict]) -> str | None:
    """The headline line: the unseen-source share with its interval (None when the model's
    speakers are unknown)."""
    if HEADLINE not in groups:
        return None
    g = groups[HEADLINE]
    if not g["pairs"]:
        return "closer to the target than to the source, sources the model never heard: none among these conversions"
    return f"closer to the target than to the source, sources the model never heard: {describe(g)}"


def format_groups(groups: dict[str, dict], with_headline: bool = True) -> list[str]:
    """The headline (unless `with_headline` is False), then one line per other group."""
    first = headline(groups) if with_headline else None
    lines = [first] if first else []
    rows = [(name, g) for name, g in groups.items() if name != HEADLINE]
    if rows:
        lines.append(f"  closer to target by kind of pair ({confidence.LEVEL:.0%} bootstrap intervals):")
        width = max(len(n) for n, _ in rows)
        lines += [f"    {name:{width}}  {describe(g)}" for name, g in rows]
    return lines


class TargetRow(NamedTuple):
    """How near a target speaker its conversions come, beside how near the model comes to it at
    all: its own held-out utterances decoded as itself (`ceiling`). A conversion can hardly
    sound more like the target than the model's rendering of the target's own speech, so a
    target whose ceiling lies near its conversions' similarity to their sources cannot be
    reached by keeping the source out of the codes alone: the renderer or the envelope is short."""
    target: str
    ceiling: float        # mean GE2E similarity of the target's own resyntheses to its references (NaN: none)
    resyntheses: int      # how many
    to_target: float      # mean similarity of the conversions to the target
    to_source: float      # … and to their sources
    pairs: int            # conversions to this target
    closer: float         # share of them closer to the target


def by_target(items: list[dict], ceilings: list[dict]) -> list[TargetRow]:
    """Per target of `items` (conversions: "target", "sim_target", "sim_source",
    "closer_to_target"), in name order, with `ceilings` (the target's own utterances decoded as
    itself: "target", "sim_target") averaged beside."""
    conv, own = defaultdict(list), defaultdict(list)
    for i in items:
        conv[i["target"]].append(i)
    for i in ceilings:
        own[i["target"]].append(i["sim_target"])
    mean = lambda xs: float(np.mean(xs)) if len(xs) else float("nan")
    return [TargetRow(t, mean(own[t]), len(own[t]), mean([i["sim_target"] for i in conv[t]]),
                      mean([i["sim_source"] for i in conv[t]]), len(conv[t]),
                      mean([bool(i["closer_to_target"]) for i in conv[t]]))
            for t in sorted(conv)]


def format_targets(rows: list[TargetRow]) -> list[str]:
    """One line per target: its ceiling, its conversions' similarities and share closer."""
    lines = ["by target (GE2E similarity; ceiling: the target's own held-out utterances decoded as itself):"]
    for r in rows:
        ceiling = "     -" if np.isnan(r.ceiling) else f"{r.ceiling:6.3f}"
        lines.append(f"  {r.target:10s} ceiling {ceiling} ({r.resyntheses})   conversions: to target "
                     f"{r.to_target:.3f}, to source {r.to_source:.3f}, closer {r.closer:.0%} of {r.pairs}")
    return lines
