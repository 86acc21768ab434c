# Two-command quick start: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS ?= 1

.PHONY: demo test regression bench lint format clean-venv system-packages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs take the versions tested here from constraints.txt (setup.cfg states the ranges).
# torch is installed alone first so that the pinned CPU wheel is used and no CUDA build is pulled.
# Two stamps: the demo's install (the package alone), then the test extras over it.
PIP_INSTALL := $(BIN)/python -m pip install --quiet -c constraints.txt
INSTALLED := $(VENV)/.installed-demo
INSTALLED_TEST := $(VENV)/.installed-test

$(INSTALLED): setup.cfg pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) torch
	$(PIP_INSTALL) -e .
	touch $@

$(INSTALLED_TEST): $(INSTALLED)
	$(PIP_INSTALL) -e ".[test]"
	touch $@

# System packages: Tesseract OCR with English, Thai, Lao, Vietnamese and Malay data (the OCR
# baseline), the fonts that render document pages, chromium (the leaderboard's browser tests), and
# espeak-ng and sox (the speech and sounds of the audio demo and its tests).
# Missing ones are installed with apt-get, as root or with sudo; where that is impossible a note
# is printed and the tests that need them skip.
SYSTEM_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-tha tesseract-ocr-lao \
	tesseract-ocr-vie tesseract-ocr-msa fonts-thai-tlwg fonts-lao fonts-noto-core fonts-dejavu-core \
	chromium espeak-ng sox

system-packages:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	  command -v tesseract >/dev/null 2>&1 || echo "note: not a Debian system; install" \
	    "Tesseract with the eng, tha, lao, vie and msa data for the OCR baseline and its tests"; \
	  exit 0; fi; \
	missing=; for package in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${db:Status-Abbrev}' $$package 2>/dev/null | grep -q '^ii' \
	    || missing="$$missing $$package"; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else sudo=none; fi; \
	if [ "$$sudo" = none ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: missing system packages:$$missing (install them with apt-get install$$missing);" \
	    "until then the OCR baseline cannot run and the tests that need it are skipped"; \
	  exit 0; fi; \
	echo "installing system packages:$$missing"; \
	{ $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing; } >/dev/null \
	  || echo "note: apt-get could not install$$missing; the tests that need them are skipped"

demo: $(INSTALLED) system-packages
	$(BIN)/harness run --output demo-results
	$(BIN)/harness leaderboard --results demo-results --out demo-results/site \
	  --benchmark demo-video --benchmark demo-images --benchmark demo-documents --benchmark demo-audio

test: $(INSTALLED_TEST) system-packages
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory regression

# The project's own regression check: the embedded demo, run afresh with no cache, against the
# reference results committed under results/. Exit 1 on a regression, 2 when not comparable.
# Without Tesseract the OCR baseline cannot run, so only demo-clip, demo-clap and demo-xclip are
# checked.
regression: $(INSTALLED) system-packages
	rm -rf .regression
	$(BIN)/harness run --output .regression --no-cache --quiet
	@if command -v tesseract >/dev/null 2>&1; then new=.regression; old=results; \
	else echo "note: Tesseract is missing; checking demo-clip, demo-clap and demo-xclip only"; \
	  rm -rf .regression/ocr-tesseract-minilm .regression-baseline; mkdir .regression-baseline; \
	  cp -r results/demo-clip results/demo-clap results/demo-xclip .regression-baseline/; \
	  new=.regression; old=.regression-baseline; fi; \
	echo "harness check --results $$new --baseline $$old"; \
	$(BIN)/harness check --results $$new --baseline $$old

# Speed against mteb, side by side (about 11 minutes on 2 cores); see benchmarks/README.md.
bench: $(INSTALLED_TEST)
	$(BIN)/python -m benchmarks.compare_mteb
	$(BIN)/python -m benchmarks.retrieval_scaling
	$(BIN)/python -m benchmarks.rank_scaling

# Style, types and layers: ruff, mypy (config in pyproject.toml) and the import contract of
# setup.cfg (lint-imports: no package imports a layer above its own).
lint: $(INSTALLED_TEST)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(INSTALLED_TEST)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean-venv:
	rm -rf $(VENV)
