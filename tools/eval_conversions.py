"""The conversion benchmark behind issue #9's figures: convert held-out utterances of the
model's corpus to other training speakers and score them with `audiovq evaluate`'s metrics.

Sources: every "val" utterance (held-out utterances of training speakers) and the first
--test utterances of each held-out speaker. Each source goes to --targets training speakers
other than its own, picked by rotating through the speaker list so every target is used
about equally and both genders appear. The pair list is a function of the manifest only, so
two checkpoints (or temperatures) are compared on the same pairs.

The headline figure is "closer to the target" (GE2E) over the sources the model never heard
(speakers outside its speaker table), printed first with its 95% bootstrap interval; the
summary also splits it into seen sources, same- and cross-gender pairs and unseen × gender
(audiovq/evaluate/closer.py: which units the interval resamples, and why).

    python tools/eval_conversions.py [--checkpoint PATH] [--temperature T] [--unseen-voices N] [--out DIR]

--unseen-voices N adds N utterances of each voice of the unseen-voices set (audiovq/data/
unseen.py: espeak variants, flite and Festival voices no model of the embedded corpus trained
on; those whose person a training speaker is are left out) as more unseen sources, with their
genders for the pairing.

Also decodes each training-speaker source as its own speaker: how many codes survive plain
resynthesis is the ceiling for how many a conversion can keep.

What a listener hears (audiovq/evaluate/listener.py: pocketsphinx WER, DNSMOS) is summed up
for conversions, resyntheses (those own-speaker decodes), the sources and their representation
limit, and two rows that need no model (audiovq/evaluate/envelope_vocoder.py): each source
re-synthesised from its own all-pole envelope at the code rate under white noise ("env+noise")
under pulses at its F0 ("env+pulses") and rendered by the `world` renderer from its own envelope
and F0 ("env+world": each renderer's model-free row), over all sources and by group (training speakers' held-out utterances, held-out
speakers), with the issue's bars read off: resynthesis at least as good as conversion,
conversion WER ≤ limit WER + 0.10, conversion DNSMOS OVRL ≥ 2.3.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
from collections import defaultdict

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from audiovq.convert import convert  # noqa: E402
from audiovq.data.manifest import Manifest  # noqa: E402
from audiovq.errors import AudioVQError  # noqa: E402
from audiovq.evaluate import (Conversion, Listener, evaluate, format_report, json_safe,  # noqa: E402
                              summarize, write_json)
from audiovq.evaluate.closer import TargetRow, by_target as by_target_rows, format_targets, headline  # noqa: E402
from audiovq.models import load_vqvae, training_corpus  # noqa: E402


def pairs(manifest: Manifest, model_speakers: list[str], targets: int, test: int,
          val: int | None = None, extra: list = (), to: list[str] | None = None) -> list[tuple]:
    """[(utterance, target speaker)] — deterministic. `extra`: more source utterances (the
    unseen voices'), after the corpus's own. `to`: every source goes to each of these target
    speakers (but its own) instead of `targets` rotated over the model's speakers."""
    heldout, added = defaultdict(list), {u.speaker for u in extra}
    for u in manifest.utterances:
        if u.split == "test" and u.speaker not in added:
            heldout[u.speaker].append(u)
    sources = [u for u in manifest.utterances if u.split == "val" and u.speaker in model_speakers][:val]
    sources += [u for spk in sorted(heldout) for u in sorted(heldout[spk], key=lambda u: u.id)[:test]]
    sources += list(extra)
    out, turn = [], 0
    for u in sources:
        if to:
            out += [(u, t) for t in to if t != u.speaker]
            continue
        chosen = []
        while len(chosen) < targets:
            spk = model_speakers[turn % len(model_speakers)]
            turn += 1
            if spk != u.speaker and spk not in chosen:
                chosen.append(spk)
        out += [(u, t) for t in chosen]
    return out


def with_unseen_voices(manifest: Manifest, unseen: Manifest, per_voice: int,
                       heard_persons: set[str] = frozenset()) -> tuple[Manifest, list]:
    """The corpus manifest with the unseen-voices set's speakers and utterances added (their
    paths made absolute, so one manifest serves references, transcripts and sources), and the
    first `per_voice` utterances of each unseen voice as extra sources. Voices in
    `heard_persons` (a training speaker is the same person, `UnseenVoice.seen_speaker`) are
    left out: their source would count as unseen though the model heard that person."""
    import dataclasses
    clash = {s.id for s in unseen.speakers} & {s.id for s in manifest.speakers}
    if clash:
        raise AudioVQError(f"unseen voices {', '.join(sorted(clash))} have the IDs of corpus speakers")
    speakers = [s for s in unseen.speakers if s.id not in heard_persons]
    keep = {s.id for s in speakers}
    utts = [dataclasses.replace(u, path=str((unseen.root / u.path).resolve()), split="test")
            for u in unseen.utterances if u.speaker in keep]
    merged = Manifest(manifest.root, manifest.sample_rate, manifest.speakers + speakers,
                      manifest.utterances + utts, manifest.source_root, manifest.meta)
    extra = [u for spk in sorted(keep) for u in sorted((u for u in utts if u.speaker == spk),
                                                        key=lambda u: u.id)[:per_voice]]
    return merged, extra


def target_ceilings(m, manifest: Manifest, targets: list[str], n: int, out: pathlib.Path,
                    done_before: list[dict] = (), **convert_args) -> list[dict]:
    """Up to n held-out utterances (val first, then test) of each target decoded as itself and
    scored like the conversions (no listener): items with "target" and "sim_target", the
    similarity of the model's rendering of the target's own speech to its references.
    `done_before`: such items already made (the reconstructions: sources decoded as their own
    speaker), used instead of decoding those utterances again. `convert_args`: the
    conversions' temperature, f0 and renderer."""
    convs, kept = [], []
    for t in targets:
        ready = {i["source"]: i for i in done_before if i["target"] == t == i["source_speaker"]}
        held = sorted((u for u in manifest.utterances if u.speaker == t and u.split in ("val", "test")),
                      key=lambda u: (u.split != "val", u.id))[:n]
        kept += [ready[str(manifest.root / u.path)] for u in held if str(manifest.root / u.path) in ready]
        held = [u for u in held if str(manifest.root / u.path) not in ready]
        if held:
            done, _ = convert(m, [manifest.root / u.path for u in held], [t], out, progress=False, **convert_args)
            convs += [Conversion(str(c.source), t, str(c.output), t, u.id) for c, u in zip(done, held)]
    made = evaluate(m.model, convs, manifest, None, listener=Listener(False, False))["items"] if convs else []
    return kept + made


WER_MARGIN = 0.10  # a conversion may lose this much WER beyond the representation limit
MIN_OVRL = 2.3     # DNSMOS OVRL a conversion should reach
KINDS = ("conversion", "resynthesis", "source", "limit")
MODEL_FREE = {"env+noise": "noise", "env+pulses": "pulses", "env+world": "world"}  # row → envelope_vocoder kind
MEASURES = ("wer", "ovrl", "sig", "bak")


def _figures(s: dict, kind: str) -> dict:
    """WER and DNSMOS of one kind ("output", "source", "limit") from `summarize`'s keys."""
    return {"wer": s[f"wer_{kind}"], **{k: s[f"dnsmos_{k}_{kind}"] for k in MEASURES[1:]}}


def listener_groups(conversions: list[dict], resyntheses: list[dict], training: set[str],
                    model_free: dict[str, list[dict]] | None = None) -> dict:
    """{group: {kind: {measure: value}, "checks": {…}}} for groups "all", "training speakers"
    (held-out utterances of speakers the model was trained on) and "held-out speakers";
    `model_free`: {row: items heard as "output"} of the rows that need no model (MODEL_FREE)."""
    tests = {"all": lambda i: True, "training speakers": lambda i: i["source_speaker"] in training,
             "held-out speakers": lambda i: i["source_speaker"] not in training}
    out = {}
    for name, keep in tests.items():
        conv = [i for i in conversions if keep(i)]
        if not conv:
            continue
        c, r = summarize(conv), summarize([i for i in resyntheses if keep(i)])
        g = {"pairs": len(conv), "conversion": _figures(c, "output"), "resynthesis": _figures(r, "output"),
             "source": _figures(c, "source"), "limit": _figures(c, "limit")}
        for row, items in (model_free or {}).items():
            g[row] = _figures(summarize([i for i in items if keep(i)]), "output")
        conv_f, res_f, lim_f = g["conversion"], g["resynthesis"], g["limit"]
        g["checks"] = {  # None: a figure is missing (no transcripts, no resyntheses, no eval extra)
            "resynthesis_wer_le_conversion": _le(res_f["wer"], conv_f["wer"]),
            "resynthesis_ovrl_ge_conversion": _le(conv_f["ovrl"], res_f["ovrl"]),
            "conversion_wer_le_limit_plus_margin": _le(conv_f["wer"], lim_f["wer"] + WER_MARGIN),
            "conversion_ovrl_ge_min": _le(MIN_OVRL, conv_f["ovrl"]),
        }
        out[name] = g
    return out


def _le(a: float, b: float) -> bool | None:
    return None if math.isnan(a) or math.isnan(b) else bool(a <= b)


def format_groups(groups: dict) -> str:
    def num(x):
        return "    -" if math.isnan(x) else f"{x:5.2f}"
    lines = [f"what a listener hears — WER (pooled) and mean DNSMOS; columns: {', '.join(KINDS)}"]
    for name, g in groups.items():
        kinds = KINDS + tuple(k for k in MODEL_FREE if k in g)
        lines.append(f"  {name} ({g['pairs']} pairs)" + ("; columns after limit: " + ", ".join(kinds[len(KINDS):])
                                                           if len(kinds) > len(KINDS) else ""))
        for m in MEASURES:
            label = "WER" if m == "wer" else f"DNSMOS {m.upper()}"
            lines.append(f"    {label:12} " + "  ".join(f"{num(g[k][m]):>11}" for k in kinds))
        verdict = {True: "yes", False: "NO", None: "-"}
        c = g["checks"]
        lines.append(f"    resynthesis ≥ conversion: WER {verdict[c['resynthesis_wer_le_conversion']]}, OVRL "
                     f"{verdict[c['resynthesis_ovrl_ge_conversion']]}; conversion WER ≤ limit + {WER_MARGIN:.2f}: "
                     f"{verdict[c['conversion_wer_le_limit_plus_margin']]}; conversion OVRL ≥ {MIN_OVRL}: "
                     f"{verdict[c['conversion_ovrl_ge_min']]}")
    return "\n".join(lines)


def model_free_rows(model, utterances: list, manifest: Manifest, listener: Listener) -> dict[str, list[dict]]:
    """Each source utterance re-synthesised from its own envelope (MODEL_FREE), heard:
    {row: [{"source", "source_speaker", "heard": {"output": …}}]}. The envelope is analysed as
    the model's decoder would predict it (its hop; a source-filter decoder's order and
    pre-emphasis, else order 12 and the decoder's pre-emphasis)."""
    from dataclasses import asdict

    from audiovq import audio
    from audiovq.evaluate import envelope_vocoder
    from audiovq.evaluate.listener import manifest_texts

    sr, hop = model.sample_rate, model.hop
    order = getattr(model.decoder, "order", 12)
    coef = getattr(model.decoder, "preemphasis", 0.0)
    texts = manifest_texts(manifest)
    rows = {row: [] for row in MODEL_FREE}
    for u in utterances:
        path = str(manifest.root / u.path)
        wav = audio.load(path, sr)
        for row, kind in MODEL_FREE.items():
            y = envelope_vocoder.resynthesize(wav, sr, hop, order, coef, kind)
            heard = listener(y, sr, texts.get(u.id))
            rows[row].append({"source": path, "source_speaker": u.speaker, "heard": {"output": asdict(heard)}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="checkpoint or run dir (default: as the CLI)")
    ap.add_argument("--temperature", type=float, default=None, help="decoder temperature (default: the model's)")
    ap.add_argument("--targets", type=int, default=2, help="target speakers per source")
    ap.add_argument("--to", nargs="+", metavar="SPEAKER",
                    help="convert every source to each of these speakers instead (e.g. --to p225 p228 p250, "
                         "issue #26's test: an espeak woman, an espeak man, a real man's recorded voice)")
    ap.add_argument("--test", type=int, default=5, help="utterances per held-out speaker")
    ap.add_argument("--val", type=int, help="only the first N held-out utterances of training speakers "
                                            "(default: all; for a quick look)")
    ap.add_argument("--f0", choices=("source", "predicted"),
                    help="F0 of a decoder with explicit pitch (as `audiovq convert --f0`; default source)")
    ap.add_argument("--renderer", choices=("network", "pulses", "world"),
                    help="what renders a source-filter decoder's frames (as `audiovq convert --renderer`; "
                         "default: the model's)")
    ap.add_argument("--excitation", dest="renderer", choices=("network", "pulses", "world"),
                    help=argparse.SUPPRESS)  # the old spelling
    ap.add_argument("--unseen-voices", type=int, default=0, metavar="N",
                    help="also convert the first N utterances of each voice of the unseen-voices set "
                         "(audiovq/data/unseen.py, built on first use; voices of a person the model trained "
                         "on are left out) as sources the model never heard; N ≤ 3 leaves each voice 5 "
                         "utterances as its references")
    ap.add_argument("--out", default="runs/eval-conversions")
    ap.add_argument("--no-listener", dest="listener", action="store_false",
                    help="skip what a listener hears (WER, DNSMOS, model-free rows): speaker measures only")
    ap.add_argument("--heard-cache", default="runs/heard-cache", metavar="DIR",
                    help="keep what the listener heard here, by waveform and text, so the sources, limits and "
                         "model-free rows are heard once for every model scored ('' keeps nothing)")
    ap.add_argument("--no-reconstructions", dest="reconstructions", action="store_false",
                    help="skip decoding the sources as their own speaker (the codes-kept ceiling)")
    ap.add_argument("--ceiling", type=int, default=3, metavar="N",
                    help="decode N held-out utterances of each target as itself: how near the model comes to "
                         "the target's voice at all, beside its conversions (0: skip)")
    a = ap.parse_args()

    m = load_vqvae(a.checkpoint)
    if a.temperature is None:
        a.temperature = m.temperature
    a.renderer = a.renderer or m.renderer
    manifest = Manifest.load(training_corpus(m))
    ids = [s["id"] for s in m.speakers]
    extra, unseen_setup = [], None
    if a.unseen_voices > 0:
        from audiovq.data.unseen import ensure_unseen_voices
        u_set = ensure_unseen_voices(m.model.sample_rate)
        heard = {v.id for v in u_set.voices if v.seen_speaker}
        manifest, extra = with_unseen_voices(manifest, Manifest.load(u_set.root), a.unseen_voices, heard)
        unseen_setup = {"root": str(u_set.root), "per_voice": a.unseen_voices,
                        "voices": sorted({u.speaker for u in extra}), "left_out_heard_persons": sorted(heard),
                        "skipped": u_set.skipped}
    unknown = [t for t in a.to or () if t not in ids]
    if unknown:
        raise SystemExit(f"--to: {', '.join(unknown)} not among the model's speakers (audiovq speakers)")
    todo = pairs(manifest, ids, a.targets, a.test, a.val, extra, a.to)
    sources_of = defaultdict(list)
    for u, t in todo:
        sources_of[t].append(u)
    out = pathlib.Path(a.out)
    conversions = []
    for t, utts in sorted(sources_of.items()):
        done, _ = convert(m, [manifest.root / u.path for u in utts], [t], out, temperature=a.temperature,
                          progress=False, f0=a.f0, renderer=a.renderer)
        conversions += [Conversion(str(c.source), t, str(c.output), u.speaker, u.id) for c, u in zip(done, utts)]
    align = pathlib.Path(manifest.source_root) / "alignments"
    # shared: each source and its limit are heard once for both lists; --no-listener: speaker
    # measures only (minutes instead of an hour for ~500 utterances to hear on 2 cores)
    listener = Listener(cache=a.heard_cache or None) if a.listener else Listener(False, False)
    report = evaluate(m.model, conversions, manifest, align if align.is_dir() else None, listener=listener,
                      speakers=m.speakers)
    resyntheses = []
    if a.reconstructions:  # the same sources decoded as their own speaker: the ceiling for "codes kept"
        own = [u for u in {u.id: u for u, _ in todo}.values() if u.speaker in ids]
        recon = []
        for spk in sorted({u.speaker for u in own}):
            utts = [u for u in own if u.speaker == spk]
            done, _ = convert(m, [manifest.root / u.path for u in utts], [spk], out / "reconstructions",
                              temperature=a.temperature, progress=False, f0=a.f0, renderer=a.renderer)
            recon += [Conversion(str(c.source), spk, str(c.output), spk, u.id) for c, u in zip(done, utts)]
        rr = evaluate(m.model, recon, manifest, None, listener=listener)
        r, resyntheses = rr["summary"], rr["items"]
        report["reconstructions"] = {k: r[k] for k in ("conversions", "code_agreement", "mel_distance")}
    if a.ceiling > 0:
        rows = target_ceilings(m, manifest, sorted(sources_of), a.ceiling, out / "targets", resyntheses,
                               temperature=a.temperature, f0=a.f0, renderer=a.renderer)
        report["by_target"] = [r._asdict() for r in by_target_rows(report["items"], rows)]
    if listener.active:
        free = model_free_rows(m.model, [u for u in {u.id: u for u, _ in todo}.values()], manifest, listener)
        report["listener"] = listener_groups(report["items"], resyntheses, set(ids), free)
    report["setup"] = {"checkpoint": str(m.path), "step": m.step, "temperature": a.temperature, "f0": a.f0,
                       "renderer": a.renderer,
                       "pairs": len(conversions), "sources": len({c.source for c in conversions}),
                       "unseen_voices": unseen_setup}
    write_json(out / "evaluation.json", report)
    print(f"checkpoint {m.path} (step {m.step}), temperature {a.temperature:g}, "
          f"{len(conversions)} pairs from {report['setup']['sources']} held-out utterances")
    print(headline(report["summary"]["closer"]))  # the benchmark's headline figure, again in the summary
    print(format_report(report))
    if "reconstructions" in report:
        r = report["reconstructions"]
        print(f"reconstructions (each source decoded as its own speaker, {r['conversions']}): codes kept "
              f"{r['code_agreement']:.1%}, log-mel DTW distance {r['mel_distance']:.1f}")
    if "by_target" in report:
        print("\n".join(format_targets([TargetRow(**r) for r in report["by_target"]])))
    if "listener" in report:
        print(format_groups(report["listener"]))
        if listener.cache is not None:
            print(f"listener: {listener.cache_hits} waveforms taken from {listener.cache}/ as heard before")
    keys = ("summary", "reconstructions", "by_target", "listener", "setup")
    print(json.dumps(json_safe({k: report[k] for k in keys if k in report})))


if __name__ == "__main__":
    main()
