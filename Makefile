# Two commands do everything on a fresh machine:
#   make demo   build the environment, synthesize + prepare the embedded corpus, train, convert, analyse
#   make test   build the environment, run the test suite
#
# The dependencies live in a virtualenv outside the clone, keyed on the dependency spec in
# setup.cfg (tools/deps_key.py), so a fresh clone (CI) reuses it and a change of dependencies
# builds a new one. Each clone gets a thin `.venv` of its own that sees those packages and holds
# only the editable install of *this* clone (and the `audiovq`, `torchrun`, `tensorboard` commands).
PYTHON    ?= python3.11
CACHE_DIR ?= $(HOME)/.cache/audiovq
DEPS_KEY  := $(shell $(PYTHON) tools/deps_key.py)
DEPS      ?= $(CACHE_DIR)/venv-$(DEPS_KEY)
VENV      := .venv
PY        := $(VENV)/bin/python
BIN       := $(VENV)/bin
SITE      := $(shell $(PYTHON) -c 'import sys; print(f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages")')
DEMO_RUN  ?= runs/demo-sf
DEMO_MINUTES ?= 5
# The demo converts utterances of voices the shipped model never heard. With flite: p255 (flite's
# slt, an American woman's voice an ASR recognises) and p254 (an espeak voice, male), to a man's
# voice from real recordings (flite's rms, p250) and an espeak woman's voice (p225). Without
# flite the embedded corpus is espeak-only, and the same unseen espeak voice is its p248; the
# analysis and the speaker references then come from that corpus (its p225-p247 are the same
# voices reading the same sentences as in the corpus with flite).
HAVE_FLITE := $(shell command -v flite 2>/dev/null)
ifneq ($(HAVE_FLITE),)
DEMO_DATA ?= data/embedded-24+flitex60-seed0
DEMO_UTTS ?= p255_001 p255_002 p254_001 p254_002
DEMO_TARGETS ?= p250 p225
else
DEMO_DATA ?= data/embedded-24x60-seed0
DEMO_UTTS ?= p248_001 p248_002 p248_003 p248_004
DEMO_TARGETS ?= p226 p225
DEMO_WITH_DATA := --data $(DEMO_DATA)/prepared-8000
endif
DEMO_SRC  ?= $(foreach u,$(DEMO_UTTS),$(DEMO_DATA)/corpus/wav48_silence_trimmed/$(firstword $(subst _, ,$(u)))/$(u)_mic1.flac)
PYTEST_ARGS ?=

.PHONY: env flite chromium festival demo demo-steps test gpu-check clean-env

$(DEPS)/.installed:
	@echo "== building the dependency environment in $(DEPS) (first time only: ~3 min, ~7 GB of wheels)"
	rm -rf $(DEPS)
	$(PYTHON) -m venv $(DEPS)
	$(DEPS)/bin/pip install -q --upgrade "pip>=24" "setuptools>=64,<81" wheel
	$(PYTHON) tools/deps_key.py --requirements > $(DEPS)/requirements.txt
	$(DEPS)/bin/pip install -q -r $(DEPS)/requirements.txt
	touch $@

$(VENV)/.ready: $(DEPS)/.installed setup.cfg
	rm -rf $(VENV)
	$(PYTHON) -m venv --without-pip $(VENV)
	echo "import site; site.addsitedir('$(DEPS)/$(SITE)')" > $(VENV)/$(SITE)/_audiovq_deps.pth
	@$(DEPS)/bin/pip uninstall -y -q audiovq 2>/dev/null || true  # the shared env never holds a clone's code
	$(DEPS)/bin/pip --python $(PY) install -q --no-deps --no-build-isolation -e .
	for tool in torchrun:torch.distributed.run tensorboard:tensorboard.main; do \
	  printf '#!/bin/sh\nexec "$$(dirname "$$0")/python" -m %s "$$@"\n' "$${tool#*:}" > $(VENV)/bin/$${tool%%:*}; \
	  chmod +x $(VENV)/bin/$${tool%%:*}; done
	touch $@

# flite (CMU) adds voices of real speakers to the embedded corpus; installed where we can (root
# with apt). Without it the corpus is built from espeak voices alone (audiovq/data/flite.py).
flite:
	@command -v flite >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get install -y -q flite >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q flite >/dev/null)) \
	  && echo "== installed flite"; } || echo "== note: flite is not installed (apt-get install flite); the embedded corpus will have espeak voices only"

# chromium and its driver run the report pages' browser tests (tests/test_report_pages.py: headless,
# from disk); installed where we can, as flite is. Without them those tests are skipped.
chromium:
	@{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null)) \
	  && echo "== installed chromium"; } || echo "== note: chromium is not installed (apt-get install chromium chromium-driver); the report pages' browser tests will be skipped"

# Festival and its English voices of real speakers (Debian: kal, ked, slt's HTS voice; rab_diphone is
# not packaged for bookworm) add test voices no model of the embedded corpus trained on
# (audiovq/data/unseen.py, docs/unseen-voices.md); installed where we can, as flite is. Without them
# the unseen-voices set has espeak and flite voices only.
FESTIVAL_PKGS := festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
festival:
	@{ command -v festival >/dev/null && [ -d /usr/share/festival/voices/english/ked_diphone ] && [ -d /usr/share/festival/voices/english/kal_diphone ] \
	  && [ -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ]; } || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get install -y -q --no-install-recommends $(FESTIVAL_PKGS) >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $(FESTIVAL_PKGS) >/dev/null)) \
	  && echo "== installed festival and its English voices"; } || echo "== note: festival is not installed (apt-get install $(FESTIVAL_PKGS)); the unseen-voices test set will have espeak and flite voices only"

env: $(VENV)/.ready flite chromium festival

# The main job on the embedded corpus: builds + prepares it on first use (data/, with its F0
# tracks), trains the source-filter preset (configs/sf-tiny.yaml) for DEMO_MINUTES (resuming if
# run again) to show the training pipeline at work, then converts, analyses and evaluates with
# the shipped demo model (audiovq/assets/demo-vqvae.pt: the same preset trained for 2 hours on
# this kind of 2-core CPU, docs/source-filter.md), since minutes of training do not convert yet.
demo: env
	@$(MAKE) --no-print-directory demo-steps  # a fresh make: HAVE_FLITE sees a flite that `env` just installed

demo-steps:
	$(PY) recipes/vctk/train.py preset=sf-tiny train.run_dir=$(DEMO_RUN) train.minutes=$(DEMO_MINUTES)
	$(BIN)/audiovq speakers
	$(BIN)/audiovq convert $(addprefix --src ,$(DEMO_SRC)) $(addprefix --speaker ,$(DEMO_TARGETS)) --out $(DEMO_RUN)/converted
	$(BIN)/audiovq analyze --split val -q --out $(DEMO_RUN)/analysis $(DEMO_WITH_DATA)
	$(BIN)/audiovq evaluate $(DEMO_RUN)/converted $(DEMO_WITH_DATA)
	@echo "== the same conversions rendered by the decoder's excitation network instead of its default renderer (world):"
	$(BIN)/audiovq convert $(addprefix --src ,$(DEMO_SRC)) $(addprefix --speaker ,$(DEMO_TARGETS)) --renderer network --out $(DEMO_RUN)/converted-network
	$(BIN)/audiovq evaluate $(DEMO_RUN)/converted-network $(DEMO_WITH_DATA)
	@echo "== demo done: your $(DEMO_MINUTES)-minute model is in $(DEMO_RUN)/checkpoints/; the shipped model's conversions of unseen voices are in $(DEMO_RUN)/converted/, its code analysis in $(DEMO_RUN)/analysis/ (with the excitation network: $(DEMO_RUN)/converted-network/); to listen, open in a browser: $(abspath $(DEMO_RUN)/converted/report.html) (and $(abspath $(DEMO_RUN)/analysis/report.html) to hear its codes)"

# Every test, slow ones included (plain `pytest` runs the fast ones only).
test: env
	$(PY) -m pytest -m "" $(PYTEST_ARGS)

# On a machine with a GPU: AMP, nccl, CUDA generation, training and conversion speed in one
# table (under 8 min); without one it says so and exits 0.
gpu-check: env
	PYTHON=$(PY) bash tools/gpu_check.sh

clean-env:
	rm -rf $(VENV) $(DEPS)
