# The two commands a fresh clone needs: `make run` and `make test`.
# The distribution's interpreter when it is Python 3.11 or newer with venv: Debian's (and most
# distributions') is built with profile-guided and link-time optimization and links the
# interpreter statically, and runs the servers' Python 10-30% faster than a default source
# build such as pyenv's (docs/benchmarks.md, "The interpreter"). PYTHON=... picks another.
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ./data

.PHONY: run test test-deps lint typecheck unit bench clean FORCE

# gateway/_md5lanes.c needs a C compiler and Python's headers: installed here when missing
# (Debian packages; needs root). Without them the gateway hashes with hashlib alone.
# The venv is made anew when PYTHON names another interpreter than the one it was made with.
$(VENV)/.python: FORCE
	@p="$$($(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable))')" && \
		[ "$$(cat $@ 2>/dev/null)" = "$$p" ] || { rm -rf $(VENV) && mkdir -p $(VENV) && echo "$$p" > $@; }

$(BIN)/.installed: $(VENV)/.python pyproject.toml setup.py gateway/_md5lanes.c
	@{ command -v cc && [ -f "$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ]; } \
		>/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends gcc libc6-dev python3-dev >/dev/null; } || \
		echo "no C compiler or Python headers: the gateway will hash MD5 with hashlib alone"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/huimin server $(DATA)

lint: $(BIN)/.installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

# A real Prometheus for tests/integration/test_observability.py, and iproute2's ss for a
# listener's backlog (Debian packages; needs root).
test-deps:
	@{ command -v prometheus && command -v ss; } >/dev/null || { [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends prometheus iproute2 >/dev/null; } || \
		echo "prometheus or ss not installed: the tests that need them will be skipped"

test: lint typecheck test-deps
	$(BIN)/pytest

unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit tests/property

bench: $(BIN)/.installed
	$(BIN)/huimin bench --help

clean:
	rm -rf $(VENV) build *.egg-info gateway/_md5lanes*.so
