# Two entry points on a fresh machine: `make chat` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SCALE_STAMP := $(VENV)/.installed-scale

.PHONY: chat test test-fast lint format index browser clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# CPU build of torch first: an unpinned torch would pull a multi-gigabyte CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# the `scale` extra (Milvus Lite, Ray Data; docs/scale.md): the tests need it, `chat` does not
$(SCALE_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,scale]'
	touch $(SCALE_STAMP)

chat: $(STAMP)
	$(VENV)/bin/assistant chat

index: $(STAMP)
	$(VENV)/bin/assistant index

# Debian's Chromium for the browser tests (browser downloads fail here; Playwright drives this one)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# everything, what CI runs: unit tests, the real model, live servers, headless Chromium
test: $(SCALE_STAMP) browser
	$(PY) -m pytest -q

# the unit tier: fake embedder, no processes, no browser (well under a minute)
test-fast: $(SCALE_STAMP)
	$(PY) -m pytest -q -m "not slow and not browser" -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check assistant tests bench
	$(VENV)/bin/ruff format --check assistant tests bench
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format assistant tests bench
	$(VENV)/bin/ruff check --fix assistant tests bench

clean:
	rm -rf $(VENV) .pytest_cache
