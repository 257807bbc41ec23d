# Two-command quick start: `make demo` and `make test`. Everything runs inside .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.installed-ray
TORCH := torch==2.13.0

.PHONY: setup setup-ray demo test test-slow bench lint format clean

setup: $(STAMP)

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# The slow tests also cover the Ray sweep backend; `make test` stays free of Ray.
setup-ray: $(RAY_STAMP)

$(RAY_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,ray]'
	touch $(RAY_STAMP)

demo: setup
	$(BIN)/python -m initlab.demo

test: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: setup-ray
	$(BIN)/python -m pytest -q -m slow --durations=12

bench: setup
	$(BIN)/python -m bench $(BENCH)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: setup
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache runs
