"""The evaluation report: a table for people and JSON for tools."""
from __future__ import annotations

import json
import math
import os
import pathlib

from ..atomic import write_text
from .closer import format_groups, headline
from .listener import KINDS
from .speaker import PITCH_APART


def _num(x, fmt: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def format_report(report: dict) -> str:
    """One line per scored conversion, then `format_summary`."""
    s = report["summary"]
    listened = "wer_output" in s
    lines = [f"{'output':40} {'target':7} {'sim→tgt':>7} {'sim→src':>7} {'codes%':>6} {'mel dB':>6} {'ΔdB':>5} "
             f"{'F0 out/tgt/src Hz':>17}" + (f" {'WER':>5} {'OVRL':>4}" if listened else "")]
    for i in report["items"]:
        f0 = "/".join(_num(i[k], ".0f") for k in ("f0_output", "f0_target", "f0_source"))
        line = (f"{pathlib.Path(i['output']).name[:40]:40} {i['target']:7} {i['sim_target']:7.3f} "
                f"{i['sim_source']:7.3f} {i['code_agreement']:6.1%} {i['mel_distance']:6.1f} "
                f"{i['loudness_diff_db']:5.1f} {f0:>17}")
        if listened:
            heard = (i.get("heard") or {}).get("output") or {}
            line += f" {_num(heard.get('wer'), '5.2f'):>5} {_num(heard.get('ovrl'), '4.2f'):>4}"
        lines.append(line)
    return "\n".join(lines + format_summary(report))


def format_summary(report: dict) -> list[str]:
    """The lines under `format_report`'s table: the headline (closer to the target, sources the
    model never heard, with its interval), shares by kind of pair and means over the
    conversions, what a listener hears, and what was not scored."""
    s = report["summary"]
    listened = "wer_output" in s
    groups = s.get("closer") or {}
    first = headline(groups)  # the headline: sources the model never heard
    lines = [first] if first else []
    if s["conversions"]:
        lines.append(f"closer to target speaker than to source: {s['closer_to_target']:.0%} of {s['conversions']}; "
                     f"mean similarity to target {s['sim_target']:.3f} vs source {s['sim_source']:.3f}; "
                     f"codes kept {s['code_agreement']:.1%}")
        lines += format_groups(groups, with_headline=False)
    if s.get("pitch_pairs"):
        lines.append(f"median F0 closer to the target's than to the source's: {s['pitch_closer_to_target']:.0%} "
                     f"of the {s['pitch_pairs']} pairs whose speakers are ≥ {PITCH_APART:g} semitones apart")
    if "phone_purity_output" in s:
        lines.append(f"phone purity of the output's codes {s['phone_purity_output']:.3f} "
                     f"(source's codes {s['phone_purity_source']:.3f})")
    if listened:
        lines += listener_table(s)
    if s.get("listener_skipped"):
        lines.append(s["listener_skipped"])
    for f in report.get("failed", []):
        lines.append(f"not scored: {pathlib.Path(f['output']).name} → {f['target']}: {f['error']}")
    return lines


def listener_table(s: dict, title: str = "what a listener hears") -> list[str]:
    """WER and DNSMOS of outputs, sources and representation limits, from `listener.summarize`."""
    lines = [f"{title} (WER: pooled errors / reference words; DNSMOS: mean, 1–5)",
             f"  {'':12} " + " ".join(f"{k:>7}" for k in KINDS)]
    rows = [("WER", "wer")] + [(f"DNSMOS {k.upper()}", f"dnsmos_{k}") for k in ("ovrl", "sig", "bak")]
    for label, key in rows:
        lines.append(f"  {label:12} " + " ".join(f"{_num(s.get(f'{key}_{k}'), '7.2f'):>7}" for k in KINDS))
    if s.get("wer_unscored"):
        lines.append(f"  WER not scored for {s['wer_unscored']} of {s['wer_unscored'] + s['wer_scored']} outputs: "
                     f"no transcript (manifest text of a corpus utterance, or <source stem>.txt beside the source)")
    if s.get("oov_words"):
        lines.append(f"  reference words outside the recogniser's dictionary (always errors): "
                     f"{', '.join(s['oov_words'][:20])}" + (" …" if len(s["oov_words"]) > 20 else ""))
    return lines


def json_safe(x):
    """NaN → None, recursively: JSON has no NaN (json.dumps would write the non-standard `NaN`)."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def write_json(path: str | os.PathLike, report: dict) -> None:
    write_text(path, json.dumps(json_safe(report), indent=1, allow_nan=False) + "\n")
