# Two commands set up everything on a fresh machine with Python 3.11:
#   make run   -> creates .venv, installs requirements.txt, starts the app
#   make test  -> also installs requirements-test.txt, runs the whole test suite
# and, for the edit-test loop, the same without the tests marked `slow` (tests/system: browser, memory, threads):
#   make test-fast
# A class at once (README, "Serving a class"): replicas behind HAProxy, kept running by supervisord:
#   make serve ADDRESS=0.0.0.0   (in the foreground; Ctrl-C or `make serve-stop` stops it)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
# Loopback: the app for this machine's own browser (and its owner's ImageNet install button); ADDRESS=0.0.0.0
# shares it with the room, where installing is off unless the owner turns it on (README, "Who may install").
ADDRESS ?= 127.0.0.1
# `make serve`: the load balancer's port; REPLICAS= overrides one replica per core (as many as the memory holds).
SERVE_PORT ?= 8500
REPLICAS ?=
SERVE_DIR := .serve

.PHONY: run serve serve-stop serve-status test test-fast bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-app: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed-app
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

run: $(VENV)/.installed-app
	$(BIN)/streamlit run app.py --server.port $(PORT) --server.address $(ADDRESS)

serve: $(VENV)/.installed-app
	$(BIN)/python -m serving up --runtime $(SERVE_DIR) --port $(SERVE_PORT) --address $(ADDRESS) \
		$(if $(REPLICAS),--replicas $(REPLICAS))

serve-stop: $(VENV)/.installed-app
	$(BIN)/python -m serving down --runtime $(SERVE_DIR)

serve-status: $(VENV)/.installed-app
	$(BIN)/python -m serving status --runtime $(SERVE_DIR)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow"

bench: $(VENV)/.installed-test
	for script in bench/[!_]*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache $(SERVE_DIR)
