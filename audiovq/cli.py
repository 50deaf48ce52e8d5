"""audiovq: speech VQ-VAEs — corpora, conversion, and what the codes learned.

    audiovq corpus synth OUT_DIR          make the embedded multi-speaker corpus
    audiovq corpus prepare ROOT OUT_DIR   resample/trim a VCTK(-shaped) tree, write a manifest
    audiovq speakers                      the speakers a checkpoint knows
    audiovq convert --src a.wav --speaker p225   speaker conversion
    audiovq encode IN.wav --out codes.npy        audio → codes
    audiovq decode codes.npy --speaker p225      codes → audio in a speaker's voice
    audiovq sample --speaker p225 [--prior PATH]  new speech from the prior over codes
    audiovq analyze                       learned codes vs phone labels, with baselines
    audiovq evaluate DIR                  speaker similarity, content, WER and DNSMOS of conversions
    audiovq export CKPT OUT               slim checkpoint for sharing

Errors a user can cause are printed as one line (`audiovq: error: …`) with exit status 2.
"""
from __future__ import annotations

import argparse
import math
import pathlib
import sys
import warnings
from typing import Callable, Sequence

from .errors import AudioVQError


def run_guarded(fn: Callable, *args) -> None:
    """Run `fn(*args)`; user errors become one line on stderr and exit status 2."""
    warnings.formatwarning = lambda msg, cat, *a, **k: f"audiovq: warning: {msg}\n"
    try:
        fn(*args)
    except AudioVQError as e:
        print(f"audiovq: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("audiovq: interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        from .train import cleanup
        cleanup()


# ---------------------------------------------------------------------------- corpus
def _corpus_synth(a: argparse.Namespace) -> None:
    from .data.synthetic import synthesize_corpus
    s = synthesize_corpus(a.out_dir, speakers=a.speakers, utterances=a.utterances, seed=a.seed,
                          progress=not a.quiet, with_flite=a.flite)
    print(s)


def _corpus_prepare(a: argparse.Namespace) -> None:
    from .data.vctk import prepare
    s = prepare(a.root, a.out_dir, sample_rate=a.sample_rate, mic=a.mic, workers=a.workers,
                heldout_speakers=a.heldout_speakers, progress=not a.quiet)
    print(s)


# ------------------------------------------------------------------------- models
def _speakers(a: argparse.Namespace) -> None:
    from .models import load_vqvae
    m = load_vqvae(a.checkpoint)
    print(f"{m.path} (step {m.step}): {len(m.speakers)} speakers")
    print(f"{'id':8} {'gender':6} {'age':>4}  accent / region")
    for s in m.speakers:
        print(f"{s['id']:8} {s.get('gender') or '-':6} {s.get('age') or '-':>4}  "
              f"{s.get('accent') or '-'}{' / ' + s['region'] if s.get('region') else ''}")


def _analyze(a: argparse.Namespace) -> None:
    from .analysis.labels import load_phone_mapping
    from .analysis.pipeline import analyze
    from .data.manifest import Manifest
    from .errors import AudioVQError
    from .models import load_vqvae, training_corpus
    if a.audio and a.data:
        raise AudioVQError("give --audio (a folder of audio) or --data (a prepared corpus), not both")
    if a.audio and a.split != "all":
        raise AudioVQError(f"--split {a.split} needs a prepared corpus (--data); an --audio folder has no splits")
    m = load_vqvae(a.checkpoint, a.device)
    if a.audio:
        from .data.folder import UNLABELLED, folder_manifest
        data = a.audio
        manifest = folder_manifest(a.audio, m.model.sample_rate)
        align = a.alignments or a.audio
        if [s.id for s in manifest.speakers] == [UNLABELLED]:
            print(f"{a.audio}: flat folder, no speaker labels: speaker leakage and across-speaker ABX "
                  "are not measurable (put each speaker's files in DIR/<speaker>/ to measure them)")
    else:
        data = a.data or training_corpus(m)
        manifest = Manifest.load(data)
        align = a.alignments or pathlib.Path(manifest.source_root) / "alignments"
    out = a.out or (m.path.parent.parent / "analysis" if m.path.parent.name == "checkpoints" else "analysis")
    mapping = load_phone_mapping(a.phone_map) if a.phone_map else None
    r = analyze(m.model, manifest, align, split=a.split, out_dir=out, mapping=mapping,
                keep_silence=not a.exclude_silence, mfcc=not a.no_mfcc, abx=not a.no_abx, progress=not a.quiet,
                minutes=a.minutes, hear_codes=a.hear_code or (), model_speakers=[s["id"] for s in m.speakers],
                meta={"checkpoint": str(m.path), "step": m.step, "data": str(data), "alignments": str(align)})
    print(r.table)
    skipped = {k: v for k, v in r.problems.summary().items() if v}
    print(f"{r.frames} frames from {r.utterances} utterances ({r.frames_silence} silence frames "
          f"{'excluded' if a.exclude_silence else 'kept as sil'}, {r.frames_outside} outside the alignments dropped)"
          + (f"; skipped utterances: {skipped}" if skipped else ""))
    plots = [f for f in r.files if f.suffix == ".png"]
    print(f"report: {r.files[0]}; plots: {', '.join(str(f) for f in plots) or 'none'}")
    print(f"page: {r.files[-1]} (open it in a browser)")


def _source_speakers(m, sources) -> dict:
    """Corpus speaker of each source file named like an utterance of the model's corpus (when
    that corpus is here: converting a file must not build a corpus)."""
    from .convert import utterance_id
    from .data.manifest import Manifest
    corpus = m.extra.get("corpus")
    if not corpus or not pathlib.Path(corpus, "manifest.json").is_file():
        return {}
    manifest = Manifest.load(corpus)
    by_id = {u.id: u.speaker for u in manifest.utterances}
    return {str(s): by_id.get(utterance_id(s)) for s in sources}


def _convert(a: argparse.Namespace) -> None:
    import signal
    from .convert import convert, expand_sources
    from .models import load_vqvae
    m = load_vqvae(a.checkpoint, a.device)
    sources = expand_sources(a.src)
    out = pathlib.Path(a.out or "converted")
    old = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as Ctrl-C does: no partial file
    try:
        items, rtf = convert(m, sources, a.speaker, out, temperature=_temperature(a.temperature, m), seed=a.seed,
                             fast=not a.slow, precision=a.precision, progress=not a.quiet, overwrite=a.overwrite,
                             source_speakers=_source_speakers(m, sources), f0=a.f0, f0_shift=a.f0_shift,
                             renderer=a.renderer or m.renderer)
    finally:
        signal.signal(signal.SIGTERM, old)
    new = [c for c in items if not c.skipped]
    for c in new:
        print(f"{c.source} → {c.target}: {c.output} ({c.seconds:.1f} s)")
    skipped = len(items) - len(new)
    folder = out if out.suffix.lower() not in (".wav", ".flac", ".ogg") else out.parent
    print(f"{len(new)} conversion(s)" + (f", RTF {rtf:.2f} ({'faster' if rtf < 1 else 'slower'} than real time)"
                                         if new else "")
          + (f"; {skipped} finished earlier, skipped (--overwrite redoes them)" if skipped else "")
          + f"; list: {folder / 'conversions.json'}")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _encode(a: argparse.Namespace) -> None:
    import torch
    from . import audio
    from .convert import save_codes
    from .models import load_vqvae
    m = load_vqvae(a.checkpoint)
    wav = audio.load(a.input, m.model.sample_rate, require_speech=True)
    codes = m.model.encode(torch.from_numpy(wav)[None])[0].numpy()
    meta = {"num_codes": m.model.quantizer.num_codes, "code_rate": m.model.code_rate,
            "sample_rate": m.model.sample_rate, "num_samples": int(wav.size), "checkpoint": str(m.path),
            "source": str(a.input)}
    out = a.out or pathlib.Path(a.input).with_suffix(".codes.npy").name
    written = save_codes(out, codes, meta)
    print(f"{codes.size} codes ({m.model.code_rate:g} per second, K={meta['num_codes']}) → "
          f"{', '.join(map(str, written))}")


def _decode(a: argparse.Namespace) -> None:
    import torch
    from . import audio
    from .convert import load_codes
    from .generate import generate
    from .models import load_vqvae
    m = load_vqvae(a.checkpoint, a.device)
    spk = m.speaker_index(a.speaker)
    codes, meta = load_codes(a.codes, m.model.quantizer.num_codes)
    length = min(int(meta.get("num_samples") or codes.size * m.model.hop), codes.size * m.model.hop)
    res = generate(m.model, torch.from_numpy(codes)[None], torch.tensor([spk]), lengths=[length],
                   temperature=_temperature(a.temperature, m), seed=a.seed, fast=not a.slow,
                   precision=a.precision, renderer=a.renderer or m.renderer)
    audio.save(a.out, res.audio[0], m.model.sample_rate)
    print(f"{a.codes} → {a.out} ({length / m.model.sample_rate:.1f} s as {a.speaker}, RTF {res.rtf:.2f})")


def _evaluate(a: argparse.Namespace) -> None:
    from .data.manifest import Manifest
    from .evaluate import evaluate, format_report, read_conversions, write_json, write_page
    from .models import load_vqvae, training_corpus
    from .webpage import files_dir
    items = read_conversions(a.conversions)
    m = load_vqvae(a.checkpoint)
    manifest = Manifest.load(a.data or training_corpus(m))
    align = a.alignments or pathlib.Path(manifest.source_root) / "alignments"
    folder = pathlib.Path(a.conversions)
    out = pathlib.Path(a.out or (folder if folder.is_dir() else folder.parent) / "evaluation.json")
    page = out.parent / "report.html"
    limits = files_dir(page) / "limits"
    for old in limits.glob("*.wav"):  # an earlier evaluation's: numbered by source, they may now mean others
        old.unlink()
    report = evaluate(m.model, items, manifest, align if pathlib.Path(align).is_dir() else None, limit_dir=limits,
                      speakers=m.speakers)
    write_json(out, report)
    write_page(page, report, checkpoint=str(m.path), json_name=out.name)
    print(format_report(report))
    print(f"report: {out}")
    print(f"page: {page} (open it in a browser)")
    if report["failed"] and not report["items"]:
        raise AudioVQError(f"none of the {len(report['failed'])} conversions could be scored (first: "
                           f"{report['failed'][0]['error']})")


def _sample(a: argparse.Namespace) -> None:
    import time
    import torch
    from . import audio
    from .convert import save_codes
    from .generate import generate
    from .prior import load_prior, sample_codes
    p = load_prior(a.prior, a.device)
    model = p.vqvae.model
    spk = p.vqvae.speaker_index(a.speaker)
    rate = model.bottleneck_rate  # the prior's codes: distinct ones
    steps = max(1, math.ceil(a.seconds * rate - 1e-9))  # enough codes to cover --seconds, cut after
    length = max(1, round(a.seconds * model.sample_rate))
    out = pathlib.Path(a.out)
    t = time.perf_counter()
    codes = sample_codes(p.prior, spk, steps, a.n, a.prior_temperature, a.top_k, a.seed, fast=not a.slow)
    t_codes = time.perf_counter() - t
    codes = model.held(codes)  # each held over its frames, as `encode` gives them
    res = generate(model, codes, torch.full((a.n,), spk), temperature=_temperature(a.temperature, p.vqvae),
                   seed=a.seed, fast=not a.slow, precision=a.precision, renderer=a.renderer or p.vqvae.renderer)
    meta = {"num_codes": model.quantizer.num_codes, "code_rate": model.code_rate, "sample_rate": model.sample_rate,
            "num_samples": length, "checkpoint": str(p.vqvae.path), "prior": str(p.path),
            "speaker": a.speaker}
    for i, (c, y) in enumerate(zip(codes.numpy(), res.audio)):
        audio.save(out / f"sample_{a.speaker}_{i:02d}.wav", y[:length], model.sample_rate)
        save_codes(out / f"sample_{a.speaker}_{i:02d}.codes.npy", c, meta)
    print(f"{a.n} × {length / model.sample_rate:.1f} s for {a.speaker} → {out}/ (codes: {steps * a.n / t_codes:.0f} "
          f"codes/s; audio: RTF {res.rtf:.2f})")


def _temperature(given: float | None, m) -> float:
    """The decoder temperature asked for, else the one the model was exported with (1 if none)."""
    return m.temperature if given is None else given


def _export(a: argparse.Namespace) -> None:
    from .models import export
    out = export(a.checkpoint, a.out, a.temperature, a.renderer)
    print(f"{a.checkpoint} → {out} ({out.stat().st_size / 1e6:.1f} MB)")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, like every other audiovq error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="audiovq", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Run `audiovq COMMAND --help` for a command's options.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    corpus = sub.add_parser("corpus", help="build or prepare a speech corpus",
                            description="Build the embedded corpus or prepare a VCTK tree for training.")
    csub = corpus.add_subparsers(dest="corpus_command", metavar="ACTION", required=True, parser_class=_Parser)
    s = csub.add_parser("synth", help="synthesize the embedded multi-speaker corpus (VCTK-shaped, with TextGrids)",
                        description="Synthesize English speech with libespeak-ng for several voices into a "
                                    "VCTK-0.92-shaped tree with phone alignments (alignments/*.TextGrid).")
    s.add_argument("out_dir", help="folder to create")
    s.add_argument("--speakers", type=_positive, default=12, help="number of espeak speakers (default 12)")
    s.add_argument("--flite", action="store_true",
                   help="add 8 speakers from CMU flite's voices of real speakers (needs the flite program); "
                        "the last espeak voice and flite's slt come last, to be held out")
    s.add_argument("--utterances", type=_positive, default=60, help="utterances per speaker (default 60)")
    s.add_argument("--seed", type=int, default=0, help="voices and sentence choice follow the seed (default 0)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_corpus_synth)

    r = csub.add_parser("prepare", help="resample, trim and index a VCTK (0.92 or 0.80) tree",
                        description="Resample once to the model rate, trim silence and write OUT_DIR/wav/ "
                                    "plus OUT_DIR/manifest.json with a deterministic train/val/test split.")
    r.add_argument("root", help="VCTK-Corpus-0.92, VCTK-Corpus (0.80) or an embedded corpus folder")
    r.add_argument("out_dir", help="prepared corpus folder (re-running skips what is done)")
    r.add_argument("--sample-rate", type=_positive, default=16000, help="target rate in Hz (default 16000)")
    r.add_argument("--mic", default="mic1", choices=["mic1", "mic2"], help="VCTK 0.92 microphone (default mic1)")
    r.add_argument("--workers", type=_positive, default=2, help="parallel processes (default 2)")
    r.add_argument("--heldout-speakers", type=int, default=None,
                   help="speakers held out for conversion tests (default: 5%%, at least 1)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_corpus_prepare)

    ck = dict(metavar="PATH", help="checkpoint file or run directory (default: the shipped demo model)")
    sp = sub.add_parser("speakers", help="list the speakers a checkpoint knows",
                        description="The speaker table stored in a checkpoint: valid --speaker values.")
    sp.add_argument("--checkpoint", **ck)
    sp.set_defaults(func=_speakers)

    cv = sub.add_parser("convert", help="convert speech to another speaker's voice",
                        description="Encode each source to codes and decode them with the target speaker's "
                                    "embedding; the output keeps the source's loudness. Writes "
                                    "<stem>_to_<speaker>.wav files and conversions.json (for `audiovq evaluate`). "
                                    "Outputs are written as they are generated (memory does not grow with the "
                                    "length); Ctrl-C or SIGTERM keeps the finished files, removes the partial one "
                                    "and leaves conversions.json listing exactly the finished ones; re-running the "
                                    "same command skips them.")
    cv.add_argument("--src", action="append", required=True, metavar="AUDIO",
                    help="source audio file or folder (repeatable)")
    cv.add_argument("--speaker", action="append", required=True, metavar="ID",
                    help="target speaker (repeatable); `audiovq speakers` lists them")
    cv.add_argument("--checkpoint", **ck)
    cv.add_argument("--out", metavar="PATH", help="output folder (default converted/), or a .wav for one conversion")
    cv.add_argument("--overwrite", action="store_true",
                    help="redo outputs that an earlier run finished (by default they are kept and skipped)")
    cv.add_argument("--f0", choices=("source", "predicted"),
                    help="decoders with explicit pitch (source_filter): 'source' (default) tracks the source's F0 "
                         "and moves it onto the target speaker's range; 'predicted' lets the decoder's F0 head "
                         "invent it from the codes (the paper's behaviour)")
    cv.add_argument("--f0-shift", type=float, default=0.0, metavar="SEMITONES",
                    help="raise (or, negative, lower) the F0 by this many semitones (decoders with explicit pitch)")
    _generation_options(cv)
    _device_option(cv)
    cv.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    cv.set_defaults(func=_convert)

    en = sub.add_parser("encode", help="audio → code indices",
                        description="Write the code indices of an audio file: .npz (codes + header) or .npy "
                                    "with a .json header (code rate, K, sample rate, length, checkpoint).")
    en.add_argument("input", metavar="IN", help="audio file")
    en.add_argument("--out", metavar="CODES", help="codes.npy or codes.npz (default <IN>.codes.npy)")
    en.add_argument("--checkpoint", **ck)
    en.set_defaults(func=_encode)

    de = sub.add_parser("decode", help="code indices → audio in a speaker's voice",
                        description="Decode a codes file (from `audiovq encode`) with a speaker's embedding.")
    de.add_argument("codes", metavar="CODES", help="codes.npy (with its .json header) or codes.npz")
    de.add_argument("--speaker", required=True, metavar="ID", help="speaker to decode as")
    de.add_argument("--out", required=True, metavar="WAV", help="output audio file")
    de.add_argument("--checkpoint", **ck)
    _generation_options(de)
    _device_option(de)
    de.set_defaults(func=_decode)

    ev = sub.add_parser("evaluate", help="score conversions: speaker similarity, content kept, signal, WER, DNSMOS",
                        description="For each conversion listed in conversions.json (written by `audiovq "
                                    "convert`): cosine of GE2E speaker embeddings (resemblyzer) to the target and "
                                    "source speakers, code agreement of the re-encoded output with the source, "
                                    "phone purity where alignments exist, log-mel DTW distance and loudness change; "
                                    "and what a listener hears: pocketsphinx word error rate (transcript: the corpus "
                                    "text, or <source stem>.txt) and DNSMOS of the output, the source and the "
                                    "source's representation limit (needs the eval extra; skipped without it).")
    ev.add_argument("conversions", metavar="DIR", help="folder with conversions.json (or the file)")
    ev.add_argument("--checkpoint", **ck)
    ev.add_argument("--data", metavar="PREPARED", help="prepared corpus for speaker references (default: the model's)")
    ev.add_argument("--alignments", metavar="DIR", help="TextGrids of the sources (default: the corpus's)")
    ev.add_argument("--out", metavar="JSON", help="report path (default DIR/evaluation.json); the page, "
                    "report.html, and its files (report_files/) go beside it")
    ev.set_defaults(func=_evaluate)

    sa = sub.add_parser("sample", help="sample new speech from a trained prior over codes",
                        description="Sample code sequences from the WaveNet prior (cached incremental, batched), "
                                    "then decode them with the VQ-VAE's decoder for the same speaker. "
                                    "--temperature is the decoder's, as in convert and decode; the prior's is "
                                    "--prior-temperature.")
    sa.add_argument("--prior", metavar="PATH", help="prior checkpoint or run directory (default: the shipped "
                    "prior over the shipped demo model's codes, audiovq/assets/demo-prior.pt)")
    sa.add_argument("--speaker", required=True, metavar="ID", help="speaker to sample")
    sa.add_argument("--seconds", type=float, default=3.0, help="length of each sample (default 3)")
    sa.add_argument("-n", type=_positive, default=4, help="number of samples (default 4)")
    sa.add_argument("--prior-temperature", type=float, default=1.0, metavar="T",
                    help="sampling temperature of the prior over codes (default 1)")
    sa.add_argument("--top-k", type=int, default=0, help="the prior samples among the k likeliest codes (0 = all)")
    _generation_options(sa)
    sa.add_argument("--decoder-temperature", type=float, dest="temperature", action=_Renamed,
                    help=argparse.SUPPRESS)
    _device_option(sa)
    sa.add_argument("--out", required=True, metavar="DIR", help="output folder")
    sa.set_defaults(func=_sample)

    ex = sub.add_parser("export", help="slim copy of a VQ-VAE or prior checkpoint for sharing",
                        description="Keep weights, config and speaker table; drop optimizer state and the "
                                    "quantizer's training reservoir.")
    ex.add_argument("checkpoint", metavar="CHECKPOINT")
    ex.add_argument("out", metavar="OUT")
    ex.add_argument("--temperature", type=float, metavar="T",
                    help="record the decoder sampling temperature to use by default (measured best)")
    ex.add_argument("--renderer", choices=RENDERERS,
                    help="record what renders a source_filter decoder's frames by default (measured best)")
    ex.add_argument("--excitation", choices=RENDERERS, dest="renderer", action=_Renamed, help=argparse.SUPPRESS)
    ex.set_defaults(func=_export)

    an = sub.add_parser("analyze", help="score learned codes against phone alignments",
                        description="Encode a prepared corpus, label each code frame with the phone at its "
                                    "centre (TextGrid phones tier), and report the paper's code→phone "
                                    "accuracy, purities, PNMI, ARI/NMI, usage, bitrate and speaker leakage, "
                                    "beside MFCC k-means, random and majority baselines; and whether the codes name "
                                    "the speaker, apart for the model's speakers and for speakers it never heard "
                                    "(the corpus's held-out speakers, encoded for this when the split has none).")
    an.add_argument("--checkpoint", **ck)
    an.add_argument("--data", metavar="PREPARED", help="prepared corpus (default: the one the model was trained on)")
    an.add_argument("--audio", metavar="DIR",
                    help="instead of --data: any folder of .wav/.flac files (any sample rate, read in place), "
                         "DIR/<speaker>/<utt>.wav (speaker = folder name) or flat DIR/<utt>.wav (no speaker "
                         "labels); phone labels such as MFA's stress-marked ARPAbet are normalised (AH0 -> AH, "
                         "spn/sil/empty -> sil)")
    an.add_argument("--alignments", metavar="DIR",
                    help="TextGrids as <DIR>/<speaker>/<utt>.TextGrid or <DIR>/<utt>.TextGrid "
                         "(default: the corpus's alignments/; with --audio, TextGrids beside the audio files)")
    an.add_argument("--split", default="all", choices=["all", "train", "val", "test"],
                    help="utterances to analyse (default all)")
    an.add_argument("--minutes", type=float, metavar="M",
                    help="analyse a random sample (seeded) of about M minutes of the split, for a quick look "
                         "at a long corpus")
    an.add_argument("--out", metavar="DIR", help="report folder (default: <run>/analysis)")
    an.add_argument("--phone-map", metavar="FILE", help="two columns FROM TO folding phones (e.g. to 39 classes)")
    an.add_argument("--exclude-silence", action="store_true", help="drop silence frames instead of a sil class")
    an.add_argument("--no-mfcc", action="store_true", help="skip the MFCC baselines")
    an.add_argument("--no-abx", action="store_true", help="skip the triphone ABX error rates")
    an.add_argument("--hear-code", type=int, action="append", metavar="N",
                    help="also cut code N's occurrences from the audio for the report page's \"hear a code\" "
                         "(repeatable; the most used codes are always there)")
    _device_option(an)
    an.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    an.set_defaults(func=_analyze)
    return p


PRECISIONS = ("float32", "bf16", "int8")  # generate.weights.PRECISIONS, not imported here: it loads torch
RENDERERS = ("network", "pulses", "world")  # generate.engine.RENDERERS, likewise
PRECISION_HELP = ("weights of the fast CPU path's matrix-vector products: float32 (default), bf16, or int8 "
                  "(about 1.7x faster for one file at a time; logits within ~1%% rms of float32)")


def _generation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature of the decoder (0 = argmax; default: the model's, "
                        "recorded at export, else 1)")
    p.add_argument("--renderer", choices=RENDERERS,
                   help="what turns the decoder's frames into samples: 'network' samples the decoder's own "
                        "network (a source_filter decoder's excitation WaveNet); 'world' renders the envelope "
                        "predicted from the codes with WORLD's synthesis (pulses at exact times, noise where "
                        "unvoiced), 'pulses' with LPC-10's pulse train (no network for either); default: the "
                        "model's, recorded at export, else network")
    p.add_argument("--excitation", choices=RENDERERS, dest="renderer", action=_Renamed, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help="random seed of the sampling (default 0)")
    p.add_argument("--slow", action="store_true", help="use the plain PyTorch generator instead of the fast CPU path")
    p.add_argument("--precision", choices=PRECISIONS, default="float32", help=PRECISION_HELP)


def _device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="where the model runs: cpu (default), cuda or cuda:N")


class _Renamed(argparse.Action):
    """An option's old spelling: still accepted, with a one-line note of the new one."""

    NEW = {"--decoder-temperature": "--temperature", "--excitation": "--renderer"}

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"audiovq: note: {option_string} is now {self.NEW[option_string]} (the old spelling will go)",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    run_guarded(args.func, args)


if __name__ == "__main__":
    main()
