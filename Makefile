# The two commands a newcomer needs: `make run` and `make test`.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Switchboard needs Python 3.11 or newer (python3 is %s)" % sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

run: $(STAMP)
	$(BIN)/pbx up

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check pbx gateway_fxo webadmin tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/parser_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# The SD-card image (Debian bookworm arm64 for the Raspberry Pi), see image/README.md: as root,
# with debootstrap, qemu-user-static and binfmt. IMAGE_ARCH=amd64 builds CI's variant (no image).
IMAGE_ARCH ?= arm64
.PHONY: image
image:
	PYTHON=$(PYTHON) image/build.sh --arch $(IMAGE_ARCH)
