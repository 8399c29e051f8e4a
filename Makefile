# The two commands a fresh clone needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ./data

.PHONY: run test test-deps lint typecheck unit bench clean

$(BIN)/.installed: pyproject.toml
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

# A real Prometheus for tests/integration/test_observability.py (Debian package; needs root).
test-deps:
	@command -v prometheus >/dev/null || { [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } || \
		echo "prometheus not installed: the observability tests will be skipped"

test: lint typecheck test-deps
	$(BIN)/pytest

unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit tests/property

bench: $(BIN)/.installed
	$(BIN)/huimin bench --help

clean:
	rm -rf $(VENV) build *.egg-info
