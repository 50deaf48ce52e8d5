"""The README's commands stay true: every `audiovq …` line of a bash block parses with the real
CLI, and every recipe line's overrides validate against the real config schema. (Running them
for real is what `make demo` and the CLI tests do.)"""
import pathlib
import re
import shlex

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
