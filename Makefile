# Freightline: the two commands (see README.md) and a few conveniences.
.PHONY: setup run test bench up down status lint

setup:
	@bash deploy/bootstrap/setup.sh

## The main job: set up, start the local stack, run the whole pipeline, print the report, stop the stack.
run: setup
	@.venv/bin/freightline run

## The full test suite (lint, types, contract checks, unit, integration, end-to-end).
test: setup
	@bash deploy/bootstrap/test.sh

## Benchmarks against baselines in the same run; results in .freightline/bench/results.md and .json.
bench: setup
	@.venv/bin/python -m tests.bench

up: setup
	@.venv/bin/freightline up

down:
	@.venv/bin/freightline down

status:
	@.venv/bin/freightline status

lint:
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy services schemas deploy tests stream_processors batch_spark dags && .venv/bin/lint-imports --no-cache
