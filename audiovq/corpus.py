"""Where a recipe's data comes from: a real VCTK tree (`data.root`) or, with none given, the
embedded synthetic corpus, built and prepared on first use. Returns the prepared manifest.
"""
from __future__ import annotations

import os
import pathlib

from .data.manifest import FILENAME, Manifest
from .errors import AudioVQError

DATA_HOME = pathlib.Path(os.environ.get("AUDIOVQ_DATA", "data"))


def embedded_paths(speakers: int, utterances: int, seed: int, sample_rate: int) -> tuple[pathlib.Path, pathlib.Path]:
    """(synthesized corpus, prepared corpus at this rate) folders of the embedded corpus."""
    name = DATA_HOME / f"embedded-{speakers}x{utterances}-seed{seed}"
    return name / "corpus", name / f"prepared-{sample_rate}"


def ensure_prepared(data, progress: bool = True) -> Manifest:
    """The prepared manifest for a `data` config section, synthesizing/preparing as needed."""
    from .data.vctk import prepare

    if data.root is None:
        from .data.synthetic import synthesize_corpus

        corpus, prepared = embedded_paths(data.embedded_speakers, data.embedded_utterances, data.embedded_seed,
                                          data.sample_rate)
        if data.prepared:
            prepared = pathlib.Path(data.prepared)
        if not (corpus / "speaker-info.txt").is_file():
            print(f"building the embedded corpus in {corpus} …", flush=True)
            synthesize_corpus(corpus, speakers=data.embedded_speakers, utterances=data.embedded_utterances,
                              seed=data.embedded_seed, progress=progress)
    else:
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
    prepare(corpus, prepared, sample_rate=data.sample_rate, mic=data.mic, progress=progress)
    return Manifest.load(prepared)
