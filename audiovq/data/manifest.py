"""The prepared-corpus manifest: which speakers and utterances a prepared directory holds.

A prepared directory is `manifest.json` plus `wav/<speaker>/<utt>.wav` (mono PCM at the
manifest's sample rate, silence-trimmed). Training, analysis and the CLI read the corpus
only through this file, so they never rescan or resample the source corpus.

Splits: speakers are "train" or "heldout"; utterances are "train", "val" (held-out
utterances of training speakers) or "test" (all utterances of held-out speakers).
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from dataclasses import dataclass, field

from ..atomic import write_text
from ..errors import AudioVQError

FORMAT = "audiovq-manifest/1"
FILENAME = "manifest.json"
SPEAKER_SPLITS = ("train", "heldout")
UTTERANCE_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Speaker:
    id: str              # "p225"
    gender: str          # "F", "M" or "" when unknown
    age: int | None
    accent: str
    region: str
    split: str           # "train" | "heldout"


@dataclass(frozen=True)
class Utterance:
    id: str              # "p225_001"
    speaker: str
    path: str            # relative to the prepared dir, posix: "wav/p225/p225_001.wav"
    num_samples: int
    duration: float      # seconds
    text: str            # "" when the corpus has no transcript
    split: str           # "train" | "val" | "test"
    trim_start: float    # seconds cut from the start of the source file (shift source alignments by -trim_start)
    source: str          # source file relative to the corpus root, posix


@dataclass
class Manifest:
    root: pathlib.Path           # the prepared dir (not stored: the dir may be moved)
    sample_rate: int
    speakers: list[Speaker]
    utterances: list[Utterance]
    source_root: str             # the corpus it was prepared from
    meta: dict = field(default_factory=dict)  # provenance: corpus layout, mic, trimming settings

    def __post_init__(self) -> None:
        self.root = pathlib.Path(self.root)
        self._speakers = {s.id: s for s in self.speakers}

    @classmethod
    def load(cls, prepared_dir: str | os.PathLike) -> "Manifest":
        """Read `<prepared_dir>/manifest.json` (a path to the file itself is accepted too)."""
        path = pathlib.Path(prepared_dir)
        if path.name == FILENAME and not path.is_dir():
            path = path.parent
        file = path / FILENAME
        if not path.is_dir():
            raise AudioVQError(f"{path}: no such prepared corpus directory")
        if not file.is_file():
            raise AudioVQError(f"{path}: no {FILENAME} (not a prepared corpus; run `audiovq corpus prepare`)")
        try:
            data = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise AudioVQError(f"{file}: not a readable manifest ({type(e).__name__})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise AudioVQError(f"{file}: manifest format {found!r}, expected {FORMAT!r} (re-run `audiovq corpus prepare`)")
        try:
            speakers = [Speaker(**s) for s in data["speakers"]]
            utterances = [Utterance(**u) for u in data["utterances"]]
            m = cls(path, int(data["sample_rate"]), speakers, utterances, str(data["source_root"]),
                    dict(data.get("meta", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise AudioVQError(f"{file}: malformed manifest ({type(e).__name__}: {e})") from None
        m._check(file)
        return m

    def _check(self, file: pathlib.Path) -> None:
        for s in self.speakers:
            if s.split not in SPEAKER_SPLITS:
                raise AudioVQError(f"{file}: speaker {s.id} has unknown split {s.split!r}")
        for u in self.utterances:
            if u.speaker not in self._speakers:
                raise AudioVQError(f"{file}: utterance {u.id} names unknown speaker {u.speaker!r}")
            if u.split not in UTTERANCE_SPLITS:
                raise AudioVQError(f"{file}: utterance {u.id} has unknown split {u.split!r}")

    def save(self) -> pathlib.Path:
        """Atomically write `<root>/manifest.json`; one speaker/utterance per line (diffable)."""
        head = {"format": FORMAT, "sample_rate": self.sample_rate, "source_root": self.source_root,
                "meta": self.meta}
        lines = [json.dumps(head, sort_keys=True)[:-1] + ","]
        for key, items in (("speakers", self.speakers), ("utterances", self.utterances)):
            rows = [json.dumps(dataclasses.asdict(x), ensure_ascii=False) for x in items]
            lines.append(f' "{key}": [\n  ' + ",\n  ".join(rows) + "\n ]" + ("," if key == "speakers" else ""))
        lines.append("}\n")
        file = self.root / FILENAME
        write_text(file, "\n".join(lines))
        return file

    def audio_path(self, utt: Utterance) -> pathlib.Path:
        return self.root / utt.path

    def split(self, name: str) -> list[Utterance]:
        """Utterances of split "train", "val" or "test", in manifest (id) order."""
        if name not in UTTERANCE_SPLITS:
            raise AudioVQError(f"unknown split {name!r}: expected one of {', '.join(UTTERANCE_SPLITS)}")
        return [u for u in self.utterances if u.split == name]

    def speaker_ids(self, split: str = "train") -> list[str]:
        """Sorted ids of the "train" or "heldout" speakers ("all" for both)."""
        if split not in SPEAKER_SPLITS + ("all",):
            raise AudioVQError(f"unknown speaker split {split!r}: expected train, heldout or all")
        return sorted(s.id for s in self.speakers if split == "all" or s.split == split)

    def speaker(self, id: str) -> Speaker:
        try:
            return self._speakers[id]
        except KeyError:
            ids = sorted(self._speakers)
            span = f"{ids[0]}…{ids[-1]}" if ids else "none"
            raise AudioVQError(f"unknown speaker {id!r} (the manifest has {len(ids)}: {span})") from None
