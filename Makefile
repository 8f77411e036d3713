# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# uv comes from PyPI into .tools/ when it is not already installed; dependencies come from
# uv.lock (`uv sync --frozen`), so every machine runs the same versions.

SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
UV_VERSION := 0.13.9
AINEWS_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
export AINEWS_TEST_POSTGRES_URL

.PHONY: sync demo run test lint format bench

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode is compiled at sync: uv does not by default, and where PYTHONDONTWRITEBYTECODE is set
# Python never caches it, so every command recompiled its ~500 modules (0.9 s of `ainews search`).
# The project is installed editable, so its own packages are compiled in place after the sync.
sync: $(UV)
	$(UV) sync --frozen --quiet --compile-bytecode
	.venv/bin/python -m compileall -q bot handlers jobs storage

demo: sync
	$(UV) run --frozen ainews demo

run: sync
	$(UV) run --frozen ainews run

test: sync
	$(UV) run --frozen pytest

lint: sync
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy

format: sync
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

bench: sync
	$(UV) run --frozen python bench/poll.py
