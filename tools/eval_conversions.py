"""The conversion benchmark behind issue #9's figures: convert held-out utterances of the
model's corpus to other training speakers and score them with `audiovq evaluate`'s metrics.

Sources: every "val" utterance (held-out utterances of training speakers) and the first
--test utterances of each held-out speaker. Each source goes to --targets training speakers
other than its own, picked by rotating through the speaker list so every target is used
about equally and both genders appear. The pair list is a function of the manifest only, so
two checkpoints (or temperatures) are compared on the same pairs.

    python tools/eval_conversions.py [--checkpoint PATH] [--temperature T] [--out DIR]

Also decodes each training-speaker source as its own speaker: how many codes survive plain
resynthesis is the ceiling for how many a conversion can keep.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections import defaultdict

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from audiovq.convert import convert  # noqa: E402
from audiovq.data.manifest import Manifest  # noqa: E402
from audiovq.evaluate import Conversion, evaluate, format_report, write_json  # noqa: E402
from audiovq.models import load_vqvae, training_corpus  # noqa: E402


def pairs(manifest: Manifest, model_speakers: list[str], targets: int, test: int) -> list[tuple]:
    """[(utterance, target speaker)] — deterministic."""
    heldout = defaultdict(list)
    for u in manifest.utterances:
        if u.split == "test":
            heldout[u.speaker].append(u)
    sources = [u for u in manifest.utterances if u.split == "val" and u.speaker in model_speakers]
    sources += [u for spk in sorted(heldout) for u in sorted(heldout[spk], key=lambda u: u.id)[:test]]
    out, turn = [], 0
    for u in sources:
        chosen = []
        while len(chosen) < targets:
            spk = model_speakers[turn % len(model_speakers)]
            turn += 1
            if spk != u.speaker and spk not in chosen:
                chosen.append(spk)
        out += [(u, t) for t in chosen]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="checkpoint or run dir (default: as the CLI)")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--targets", type=int, default=2, help="target speakers per source")
    ap.add_argument("--test", type=int, default=5, help="utterances per held-out speaker")
    ap.add_argument("--out", default="runs/eval-conversions")
    ap.add_argument("--no-reconstructions", dest="reconstructions", action="store_false",
                    help="skip decoding the sources as their own speaker (the codes-kept ceiling)")
    a = ap.parse_args()

    m = load_vqvae(a.checkpoint)
    manifest = Manifest.load(training_corpus(m))
    ids = [s["id"] for s in m.speakers]
    todo = pairs(manifest, ids, a.targets, a.test)
    by_target = defaultdict(list)
    for u, t in todo:
        by_target[t].append(u)
    out = pathlib.Path(a.out)
    conversions = []
    for t, utts in sorted(by_target.items()):
        done, _ = convert(m, [manifest.root / u.path for u in utts], [t], out, temperature=a.temperature,
                            progress=False)
        conversions += [Conversion(str(c.source), t, str(c.output), u.speaker, u.id) for c, u in zip(done, utts)]
    align = pathlib.Path(manifest.source_root) / "alignments"
    report = evaluate(m.model, conversions, manifest, align if align.is_dir() else None)
    if a.reconstructions:  # the same sources decoded as their own speaker: the ceiling for "codes kept"
        own = [u for u in {u.id: u for u, _ in todo}.values() if u.speaker in ids]
        recon = []
        for spk in sorted({u.speaker for u in own}):
            utts = [u for u in own if u.speaker == spk]
            done, _ = convert(m, [manifest.root / u.path for u in utts], [spk], out / "reconstructions",
                              temperature=a.temperature, progress=False)
            recon += [Conversion(str(c.source), spk, str(c.output), spk, u.id) for c, u in zip(done, utts)]
        r = evaluate(m.model, recon, manifest, None)["summary"]
        report["reconstructions"] = {k: r[k] for k in ("conversions", "code_agreement", "mel_distance")}
    report["setup"] = {"checkpoint": str(m.path), "step": m.step, "temperature": a.temperature,
                       "pairs": len(conversions), "sources": len({c.source for c in conversions})}
    write_json(out / "evaluation.json", report)
    print(f"checkpoint {m.path} (step {m.step}), temperature {a.temperature:g}, "
          f"{len(conversions)} pairs from {report['setup']['sources']} held-out utterances")
    print(format_report(report))
    if "reconstructions" in report:
        r = report["reconstructions"]
        print(f"reconstructions (each source decoded as its own speaker, {r['conversions']}): codes kept "
              f"{r['code_agreement']:.1%}, log-mel DTW distance {r['mel_distance']:.1f}")
    print(json.dumps({k: report[k] for k in ("summary", "reconstructions", "setup") if k in report}))


if __name__ == "__main__":
    main()
