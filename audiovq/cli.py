"""The `audiovq` console script. Thin: parse arguments, call library functions, print.

    audiovq corpus synth OUT_DIR          make the embedded multi-speaker corpus
    audiovq corpus prepare ROOT OUT_DIR   resample/trim a VCTK(-shaped) tree, write a manifest

Errors a user can cause are printed as one line (`audiovq: error: …`) with exit status 2.
"""
from __future__ import annotations

import argparse
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
                          progress=not a.quiet)
    print(s)


def _corpus_prepare(a: argparse.Namespace) -> None:
    from .data.vctk import prepare
    s = prepare(a.root, a.out_dir, sample_rate=a.sample_rate, mic=a.mic, workers=a.workers,
                heldout_speakers=a.heldout_speakers, progress=not a.quiet)
    print(s)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="audiovq", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Run `audiovq COMMAND --help` for a command's options.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    corpus = sub.add_parser("corpus", help="build or prepare a speech corpus",
                            description="Build the embedded corpus or prepare a VCTK tree for training.")
    csub = corpus.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    s = csub.add_parser("synth", help="synthesize the embedded multi-speaker corpus (VCTK-shaped, with TextGrids)",
                        description="Synthesize English speech with libespeak-ng for several voices into a "
                                    "VCTK-0.92-shaped tree with phone alignments (alignments/*.TextGrid).")
    s.add_argument("out_dir", help="folder to create")
    s.add_argument("--speakers", type=_positive, default=12, help="number of speakers (default 12)")
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
    return p


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
