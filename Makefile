# The two commands: `make run` (the whole cloud, embedded default) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?=

.PHONY: run test setup lint format sample bench

run:
	@tools/setup.sh run
	@tools/run.sh $(CONFIG)

test:
	@tools/setup.sh test
	@$(BIN)/ruff check nova_twisted plugins twisted tests bench tools
	@$(BIN)/ruff format --check --quiet nova_twisted plugins twisted tests bench tools
	@$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

setup:
	@tools/setup.sh test

lint:
	$(BIN)/ruff check nova_twisted plugins twisted tests bench tools
	$(BIN)/ruff format --check nova_twisted plugins twisted tests bench tools

format:
	$(BIN)/ruff format nova_twisted plugins twisted tests bench tools
	$(BIN)/ruff check --fix nova_twisted plugins twisted tests bench tools

sample:
	$(BIN)/nova-manage config sample > etc/nova.conf.sample
