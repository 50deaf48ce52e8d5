"""Where a recipe's data comes from: a real VCTK tree (`data.root`) or, with none given, the
embedded synthetic corpus, built and prepared on first use. Returns the prepared manifest.
"""
from __future__ import annotations

import os
import pathlib

from .data.manifest import FILENAME, Manifest
from .errors import AudioVQError
from .filelock import build_once

DATA_HOME = pathlib.Path(os.environ.get("AUDIOVQ_DATA", "data"))


def embedded_paths(speakers: int, utterances: int, seed: int, sample_rate: int,
                   with_flite: bool = False) -> tuple[pathlib.Path, pathlib.Path]:
    """(synthesized corpus, prepared corpus at this rate) folders of the embedded corpus."""
    name = DATA_HOME / f"embedded-{speakers}{'+flite' if with_flite else ''}x{utterances}-seed{seed}"
    return name / "corpus", name / f"prepared-{sample_rate}"


def embedded_with_flite(data) -> bool:
    """Whether the embedded corpus of a `data` config gets flite's voices: asked for
    (`data.embedded_flite`) and the flite program installed. Without flite the corpus is
    espeak-only, in a folder of its own name, and as deterministic."""
    from .data import flite

    if not data.embedded_flite:
        return False
    if flite.available():
        return True
    print("note: flite is not installed, so the embedded corpus has espeak voices only "
          "(apt-get install flite adds voices of real speakers)", flush=True)
    return False


def ensure_prepared(data, progress: bool = True) -> Manifest:
    """The prepared manifest for a `data` config section, synthesizing/preparing as needed.

    Safe to call from every torchrun rank, or from runs sharing a data folder: one process
    builds each folder while the others wait (saying so once when `progress`), then read it.
    Under torchrun only each node's local rank 0 builds (nodes may not share the folder).
    """
    from .data.vctk import prepare

    builder = int(os.environ.get("LOCAL_RANK", "0")) == 0

    if data.root is None:
        from .data.synthetic import heldout_speakers, synthesize_corpus

        with_flite = embedded_with_flite(data)
        heldout = heldout_speakers(with_flite)
        corpus, prepared = embedded_paths(data.embedded_speakers, data.embedded_utterances, data.embedded_seed,
                                          data.sample_rate, with_flite)
        if data.prepared:
            prepared = pathlib.Path(data.prepared)

        def synthesize() -> None:
            print(f"building the embedded corpus in {corpus} …", flush=True)
            synthesize_corpus(corpus, speakers=data.embedded_speakers, utterances=data.embedded_utterances,
                              seed=data.embedded_seed, progress=progress, with_flite=with_flite)

        # speaker-info.txt is written last, so a corpus a killed run left half-made is rebuilt
        build_once(corpus, (corpus / "speaker-info.txt").is_file, synthesize, progress, builder)
    else:
        heldout = None
        corpus = pathlib.Path(data.root)
        if not corpus.is_dir():
            raise AudioVQError(f"data.root={data.root}: no such directory")
        prepared = pathlib.Path(data.prepared) if data.prepared else (
            DATA_HOME / "prepared" / f"{corpus.resolve().name}-{data.sample_rate}")

    def prepare_corpus() -> None:
        print(f"preparing {corpus} → {prepared} at {data.sample_rate} Hz …", flush=True)
        prepare(corpus, prepared, sample_rate=data.sample_rate, mic=data.mic, progress=progress,
                heldout_speakers=heldout)

    # the manifest is written last, so a half-prepared folder is resumed, never read
    build_once(prepared, (prepared / FILENAME).is_file, prepare_corpus, progress, builder)
    manifest = Manifest.load(prepared)
    if manifest.sample_rate != data.sample_rate:
        raise AudioVQError(f"{prepared}: prepared at {manifest.sample_rate} Hz but data.sample_rate="
                           f"{data.sample_rate}; set data.prepared to another folder")
    return manifest
