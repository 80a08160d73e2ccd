# The README's two commands: `make demo` and `make test`. Both run `make setup` first.
.PHONY: setup demo test test-long typecheck lint bench clean

SCALE ?= 0.1
DEMO_DB ?= demo/forum-legacy.db

setup:
	@./scripts/setup.sh

demo: setup
	@mkdir -p $(dir $(DEMO_DB))
	@.venv/bin/forum demo --scale $(SCALE) --seed 42 --db $(DEMO_DB)

test: setup
	@.venv/bin/ruff check .
	@.venv/bin/mypy
	@.venv/bin/python -m pytest -q

typecheck: setup  # mypy --strict on src/pgferry ([tool.mypy] in pyproject.toml)
	@.venv/bin/mypy

test-long: setup  # the properties with new, and more, random examples each run
	@HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest -q

lint: setup
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

clean:
	rm -rf .venv demo .pytest_cache .hypothesis .mypy_cache
