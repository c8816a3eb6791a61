# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ditto-installed

.PHONY: install run test lint format clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first: pinned so pip takes the CPU wheel lying on disk instead of several GB of CUDA packages.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	# The official LTX reference names torchaudio (no CPU build here); its other needs come with the test extra.
	$(PY) -m pip install -q --no-deps ltx-core==1.0.0 ltx-pipelines==1.0.0
	# torchaudio's Python code for the audio-input parity references (tests/parity/official_shims.py), beside
	# the venv's packages so nothing else imports it (its compiled part is for another torch and never loaded).
	$(PY) -m pip install -q --no-deps --target $(VENV)/ref-torchaudio torchaudio==2.11.1
	# Debian's chromium for the web page's browser test (tests/server/test_web_page.py; Playwright drives it,
	# no browser is downloaded). Skipped when it is there; it needs root (CI runs as root): without root and
	# without chromium, that test is skipped.
	command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	mkdir -p outputs
	$(VENV)/bin/ditto generate --prompt "a red fox in the snow" --output outputs/demo.mp4

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

test: lint
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) outputs .pytest_cache
