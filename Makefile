# Two commands do everything on a fresh machine:
#   make demo   build the environment, synthesize + prepare the embedded corpus, train, convert, analyse
#   make test   build the environment, run the test suite
#
# The virtualenv lives outside the clone, keyed on the dependency spec in setup.cfg, so a fresh
# clone (CI) reuses it and a change of dependencies builds a new one. `.venv` links to it.
PYTHON    ?= python3.11
CACHE_DIR ?= $(HOME)/.cache/audiovq
DEPS_KEY  := $(shell $(PYTHON) tools/deps_key.py)
VENV      ?= $(CACHE_DIR)/venv-$(DEPS_KEY)
PY        := $(VENV)/bin/python
BIN       := $(VENV)/bin
DEMO_RUN  ?= runs/demo
DEMO_MINUTES ?= 5
# an utterance of the held-out speaker of the embedded corpus (never seen in training)
DEMO_SRC  ?= data/embedded-12x60-seed0/corpus/wav48_silence_trimmed/p236/p236_001_mic1.flac
PYTEST_ARGS ?=

.PHONY: env demo test clean-env

$(VENV)/.installed:
	@echo "== building the environment in $(VENV) (first time only: ~3 min, ~7 GB of wheels)"
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade "pip>=24" "setuptools>=64,<81" wheel
	$(VENV)/bin/pip install -q -e ".[dev,eval]"
	touch $@

# The package itself is an editable install pointing at *this* clone; re-pointed when needed.
env: $(VENV)/.installed
	@$(PY) tools/ensure_editable.py || $(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@ln -sfn $(VENV) .venv

# The main job on the embedded corpus: builds + prepares it on first use (data/), trains the
# tiny preset for DEMO_MINUTES (resuming if run again), then converts and analyses.
demo: env
	$(PY) recipes/vctk/train.py train.run_dir=$(DEMO_RUN) train.minutes=$(DEMO_MINUTES)
	$(BIN)/audiovq speakers --checkpoint $(DEMO_RUN)
	$(BIN)/audiovq convert --checkpoint $(DEMO_RUN) --src $(DEMO_SRC) --speaker p225 --speaker p226 --out $(DEMO_RUN)/converted
	$(BIN)/audiovq analyze --checkpoint $(DEMO_RUN) --split val -q
	$(BIN)/audiovq evaluate $(DEMO_RUN)/converted --checkpoint $(DEMO_RUN)
	@echo "== demo done: conversions of a held-out speaker's utterance are in $(DEMO_RUN)/converted/, the code analysis in $(DEMO_RUN)/analysis/"

# Every test, slow ones included (plain `pytest` runs the fast ones only).
test: env
	$(PY) -m pytest -m "" $(PYTEST_ARGS)

clean-env:
	rm -rf $(VENV) .venv
