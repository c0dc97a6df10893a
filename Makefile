# aiosim: `make demo` sets up and runs the main job; `make test` sets up and runs the tests.
#
# `make setup` installs exactly requirements/aiosim.lock (every package of the closure at an exact
# version, hash-checked) into .venv with uv, itself installed hash-checked from
# requirements/bootstrap.lock. `make lock` regenerates both locks from setup.cfg;
# `make test-latest` runs the suite against the newest versions setup.cfg allows.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out
LOCK := requirements/aiosim.lock
BOOTSTRAP_LOCK := requirements/bootstrap.lock
# This machine kind keeps the CPU build of torch as a local wheel; uv looks there only if told.
WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(WHEELS)/*.whl),--find-links $(WHEELS))
LOCK_PLATFORM ?= x86_64-manylinux_2_28
LOCK_PYTHON ?= 3.11
# test-latest keeps torch at the locked CPU build (a newer torch here is a multi-GB CUDA build);
# `make test-latest LATEST_TORCH=torch` lets it float too.
LATEST_VENV ?= .venv-latest
LATEST_TORCH ?= $(shell grep -o '^torch==[^ ]*' $(LOCK))

.PHONY: setup demo test lint bench lock test-latest clean

setup: $(VENV)/.installed

$(VENV)/.installed: $(LOCK) $(BOOTSTRAP_LOCK) setup.cfg pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --no-deps --require-hashes -r $(BOOTSTRAP_LOCK)
	$(BIN)/uv pip install -q --python $(BIN)/python --require-hashes --no-deps $(FIND_LINKS) -r $(LOCK)
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps --no-build-isolation -e .
	$(BIN)/uv pip check --python $(BIN)/python
	touch $@

lock: setup
	$(BIN)/uv pip compile -q requirements/bootstrap.in --generate-hashes \
		--python-version $(LOCK_PYTHON) --python-platform $(LOCK_PLATFORM) -o $(BOOTSTRAP_LOCK)
	$(BIN)/uv pip compile -q setup.cfg requirements/build.in -c requirements/pins.txt --extra dev --generate-hashes $(FIND_LINKS) \
		--python-version $(LOCK_PYTHON) --python-platform $(LOCK_PLATFORM) -o $(LOCK)

test-latest: setup
	rm -rf $(LATEST_VENV)
	$(BIN)/uv venv -q --python $(PYTHON) $(LATEST_VENV)
	$(BIN)/uv pip install -q --python $(LATEST_VENV)/bin/python --resolution highest $(FIND_LINKS) \
		-r requirements/build.in '$(LATEST_TORCH)'
	$(BIN)/uv pip install -q --python $(LATEST_VENV)/bin/python --resolution highest $(FIND_LINKS) \
		--no-build-isolation -e '.[dev]' '$(LATEST_TORCH)'
	$(BIN)/uv pip list --python $(LATEST_VENV)/bin/python | grep -E -i '^(torch|transformers|tokenizers|pyzmq|msgpack|lmdb|numpy|hypothesis|pytest) '
	$(LATEST_VENV)/bin/python -m pytest -q tests

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
