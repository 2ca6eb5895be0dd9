# Two commands take a fresh Linux machine (Python >= 3.11, git) to a running system
# (`make run`) and to a passing test suite (`make test`). Each installs what it needs.

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
DATA ?= $(CURDIR)/data

PO := controlplane/i18n/locale/ru/LC_MESSAGES/controlplane.po
MO := $(PO:.po=.mo)

.PHONY: run test lint typecheck pytest clean catalogs bench

.tools/bin/uv:
	$(PYTHON) -m venv .tools || { echo "python3 -m venv failed: install python3-venv (Debian: apt-get install python3-venv)"; exit 1; }
	.tools/bin/pip install --quiet uv

$(BIN)/controlplane: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

# The compiled Russian catalog (the build hook makes it for wheels and the image too).
$(MO): $(PO) | $(BIN)/controlplane
	$(BIN)/pybabel compile

# After changing texts in the code: the template and the catalogs follow it, then compile.
catalogs: $(BIN)/controlplane
	$(BIN)/pybabel extract
	$(BIN)/pybabel update
	$(BIN)/pybabel compile

# exec: make's SIGTERM (make signals its recipe's shell only) reaches supervisord itself
run: $(BIN)/controlplane $(MO)
	exec env CONTROLPLANE_DATA_DIR=$${CONTROLPLANE_DATA_DIR:-$(DATA)} $(BIN)/controlplane up

lint: $(BIN)/controlplane
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(BIN)/controlplane
	$(BIN)/mypy --strict controlplane

pytest: $(BIN)/controlplane $(MO)
	$(BIN)/pytest

test: lint typecheck pytest

# Every benchmark against its baselines (docs/performance.md); `make bench BENCH="store"` for some.
bench: $(BIN)/controlplane $(MO)
	bench/run $(BENCH)

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
