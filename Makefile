# aiosim: `make demo` sets up and runs the main job; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: setup
	mkdir -p $(OUT)
	$(BIN)/aiosim launch --agents math:1,narrative:1,rec:1 --scheduler rr --quantum 8 --max-batch 1 \
		--seed 0 --json $(OUT)/demo.json --plot $(OUT)/demo.png

test: setup
	$(BIN)/python -m pytest -q tests

lint: setup
	$(BIN)/ruff check .

bench: setup
	mkdir -p $(OUT)
	$(BIN)/aiosim bench switch --json $(OUT)/switch.json
	$(BIN)/aiosim bench sched --json $(OUT)/sched.json
	$(BIN)/aiosim bench table5 --json $(OUT)/table5.json --plot $(OUT)/table5.png

clean:
	rm -rf $(OUT) state .pytest_cache .hypothesis
