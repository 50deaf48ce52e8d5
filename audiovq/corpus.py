"""Where a recipe's data comes from: a real VCTK tree (`data.root`) or, with none given, the
embedded synthetic corpus, built and prepared on first use. Returns the prepared manifest.
"""
from __future__ import annotations

import os
import pathlib

from .data.manifest import FILENAME, Manifest
from .errors import AudioVQError

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
    """The prepared manifest for a `data` config section, synthesizing/preparing as needed."""
    from .data.vctk import prepare

    if data.root is None:
        from .data.synthetic import heldout_speakers, synthesize_corpus

        with_flite = embedded_with_flite(data)
        heldout = heldout_speakers(with_flite)
        corpus, prepared = embedded_paths(data.embedded_speakers, data.embedded_utterances, data.embedded_seed,
                                          data.sample_rate, with_flite)
        if data.prepared:
            prepared = pathlib.Path(data.prepared)
        if not (corpus / "speaker-info.txt").is_file():
            print(f"building the embedded corpus in {corpus} …", flush=True)
            synthesize_corpus(corpus, speakers=data.embedded_speakers, utterances=data.embedded_utterances,
                              seed=data.embedded_seed, progress=progress, with_flite=with_flite)
    else:
        heldout = None
        corpus = pathlib.Path(data.root)
        if not corpus.is_dir():
            raise AudioVQError(f"data.root={data.root}: no such directory")
        prepared = pathlib.Path(data.prepared) if data.prepared else (
            DATA_HOME / "prepared" / f"{corpus.resolve().name}-{data.sample_rate}")
    if (prepared / FILENAME).is_file():
        manifest = Manifest.load(prepared)
        if manifest.sample_rate == data.sample_rate:
            return manifest
        raise AudioVQError(f"{prepared}: prepared at {manifest.sample_rate} Hz but data.sample_rate="
                           f"{data.sample_rate}; set data.prepared to another folder")
    print(f"preparing {corpus} → {prepared} at {data.sample_rate} Hz …", flush=True)
    prepare(corpus, prepared, sample_rate=data.sample_rate, mic=data.mic, progress=progress,
            heldout_speakers=heldout)
    return Manifest.load(prepared)
