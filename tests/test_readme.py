"""The README's commands stay true: every `audiovq …` line of a bash block parses with the real
CLI, every recipe line's overrides validate against the real config schema, and (slow) every
bash line runs as written in a scratch directory — with a VCTK-shaped tree standing in for
/data/VCTK-Corpus-0.92 and step caps appended to training lines. `make demo` and `make test`
are run by CI itself (.ci/run)."""
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from audiovq.cli import build_parser
from audiovq.config import load_config

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
KINDS = {"recipes/vctk/train.py": "vqvae", "recipes/vctk/train_prior.py": "prior",
         "recipes/images/train.py": "images", "recipes/images/train_prior.py": "images_prior"}


def blocks():
    """(language, lines) of each fenced block of the README."""
    lang, lines = None, []
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, lines = line[3:].strip() or "text", []
            else:
                yield lang, lines
                lang = None
        elif lang is not None:
            lines.append(line)


def bash_lines():
    for lang, lines in blocks():
        for line in lines if lang == "bash" else []:
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#") and "[" not in line:
                yield line


LINES = list(bash_lines())


def test_readme_has_the_two_quickstart_commands():
    assert LINES[:2] == ["make demo", "make test"]


@pytest.mark.parametrize("line", [l for l in LINES if l.startswith("audiovq ")])
def test_cli_lines_parse(line):
    args = build_parser().parse_args(shlex.split(line)[1:])
    assert callable(args.func)


@pytest.mark.parametrize("line", [l for l in LINES if "recipes/" in l])
def test_recipe_lines_validate(line):
    words = shlex.split(line)
    script = next(w for w in words if w.startswith("recipes/"))
    assert (README.parent / script).is_file(), script
    overrides = [w for w in words[words.index(script) + 1:] if "=" in w]
    if KINDS[script] in ("prior", "images_prior") and not any(w.startswith("vqvae=") for w in overrides):
        overrides.append("vqvae=x")
    load_config(KINDS[script], overrides)


def synopsis_lines():
    for lang, lines in blocks():
        for line in lines if lang == "text" else []:
            if line.startswith("audiovq "):
                yield line.split("  ")[0]


def _subparser(parser, words):
    for w in words:
        actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not actions or w not in actions[0].choices:
            return parser
        parser = actions[0].choices[w]
    return parser


@pytest.mark.parametrize("line", list(synopsis_lines()))
def test_cli_synopsis_names_real_commands_and_options(line):
    words = line.split()[1:]
    parser = _subparser(build_parser(), [w for w in words[:2] if not w.startswith("-")])
    assert parser.prog != "audiovq", f"no such command in: {line}"
    known = {o for a in parser._actions for o in a.option_strings}
    for option in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", line):
        assert option in known, f"{option} is not an option of `{parser.prog}`"


VCTK = "/data/VCTK-Corpus-0.92"  # the README's example path; a small VCTK-shaped tree stands in
CAPS = {  # appended to training lines so that each runs in seconds (later overrides win)
    "recipes/vctk/train.py": ["train.steps=2", "train.batch_size=2", "train.val_every=0",
                              "data.embedded_speakers=3", "data.embedded_utterances=4"],
    "recipes/vctk/train_prior.py": ["train.steps=2", "train.batch_size=2", "train.val_every=0"],
    "recipes/images/train.py": ["train.steps=2", "train.batch_size=4", "train.val_every=0"],
    "recipes/images/train_prior.py": ["train.steps=2", "train.batch_size=4", "train.val_every=0"],
    "tools/eval_conversions.py": ["--test", "1", "--targets", "1", "--ceiling", "1"],
}


def runnable(line: str, n: int, vctk: str) -> list[str] | None:
    """The argv README line number n runs as in the scratch dir (`vctk` standing in for the
    VCTK path), or None for the Makefile lines."""
    words = shlex.split(line)
    if words[0] == "make":
        return None
    script = next((w for w in words if w.startswith(("recipes/", "tools/"))), None)
    words = [w.replace(VCTK, vctk) for w in words]
    if script:
        words = [str(README.parent / w) if w == script else w for w in words] + CAPS.get(script, [])
        if script == "recipes/vctk/train.py":
            words.append(f"train.run_dir=runs/line{n}")  # each its own run (presets differ)
    if words[0] == "python":
        words[0] = sys.executable
    elif words[0] in ("audiovq", "torchrun", "tensorboard"):
        words[0] = str(pathlib.Path(sys.executable).parent / words[0])
    return words


@pytest.mark.slow
def test_every_readme_bash_line_runs(small_corpus, tmp_path):
    raw, _ = small_corpus
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ran = 0
    for n, line in enumerate(LINES):
        argv = runnable(line, n, str(raw))
        if argv is None:
            continue
        demo = re.search(r"vqvae=(runs/demo\S*)", line)
        if demo and not (tmp_path / demo[1]).exists():
            first = min((tmp_path / "runs").glob("line*"), key=lambda p: int(p.name[4:]))
            (tmp_path / demo[1]).symlink_to(first.resolve())  # what `make demo` would have trained
        res = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, f"{line}\n{res.stderr[-3000:]}"
        ran += 1
    assert ran >= 8
