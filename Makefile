# spokenlm: `make demo` runs the whole pipeline on a synthetic corpus; `make test` runs the tests.
# Both create .venv and install everything first (Python packages and the espeak-ng system package).

VENV     ?= .venv
PYTHON   ?= python3
PY       := $(VENV)/bin/python
# The CPU build of torch (installed only when the venv has no torch): seconds here, never a CUDA download.
TORCH    ?= torch==2.13.0
RUN      ?= runs/demo
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test test-slow bench browser clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  echo "installing the espeak-ng system package (Debian)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq espeak-ng >/dev/null; }
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	@touch $@

demo: setup
	$(VENV)/bin/spokenlm demo --output $(RUN)

test: setup
	$(VENV)/bin/pytest -q

test-slow: setup
	$(VENV)/bin/pytest -q -m slow

bench: setup
	$(PY) -m pip install -q -e ".[test,bench]"
	$(PY) benchmarks/run_all.py

# headless Chromium (Debian package), for the report's browser test and screenshots
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing the chromium system package (Debian)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	@chromium --version

clean:
	rm -rf $(VENV) runs .pytest_cache
