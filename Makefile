# storctl: the two commands that do everything on a fresh machine.
#   make quickstart   set up, then run a real session on the embedded default
#   make test         set up, then lint, type-check and run every test
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: quickstart test lint typecheck pytest bench bench-quick setup qemu chromium postgres clean rooms \
	lab lab-ceph lab-iscsi lab-down lab-status lab-clean soak

setup: $(STAMP) qemu

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# Host tools the agent and the pictures need: qemu-img/qemu-io (the kvm agent) and
# graphviz's dot (`storctl fsm show -o png`, `storctl history --png`).
qemu:
	@missing=""; \
	command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || missing="$$missing qemu-utils"; \
	command -v dot >/dev/null || missing="$$missing graphviz"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing with apt"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "error: missing$$missing and this user cannot run apt-get; install them" >&2; exit 1; fi; \
	  ($$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || { echo "error: could not install$$missing; install them (apt-get install$$missing) and retry" >&2; exit 1; }; \
	fi

# A real browser for the incident page's check (tests/integration/test_report_page.py
# opens `storctl report incident --html` in headless Chromium): Debian's `chromium`.
chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing chromium with apt"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "error: chromium is missing and this user cannot run apt-get; install it" >&2; exit 1; fi; \
	  ($$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || { echo "error: could not install chromium; install it (apt-get install chromium) and retry" >&2; exit 1; }; \
	}

postgres:
	@if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then \
	  echo "PostgreSQL is down: starting it"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start \
	    || { echo "error: could not start PostgreSQL on 127.0.0.1:5432" >&2; exit 1; }; \
	  for i in $$(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done; \
	fi

# The lab: Ceph (mon, mgr, bluestore OSD, radosgw: RBD, S3, Swift) and tgtd (iSCSI) on
# 127.0.0.1 only, installed with apt if missing, data under var/lab/ (or
# $$STORCTL_LAB_DIR). Each target starts only what is down; a second `make lab` just
# confirms. lab-down stops only what the lab started (the PIDs it recorded), keeping
# the data; lab-clean removes it. See README.md, "The lab".
LAB := $(PY) tools/lab.py

lab: $(STAMP)
	@$(LAB) up

lab-ceph: $(STAMP)
	@$(LAB) up ceph

lab-iscsi: $(STAMP)
	@$(LAB) up iscsi

lab-down: $(STAMP)
	@$(LAB) down

lab-status: $(STAMP)
	@$(LAB) status

lab-clean: $(STAMP)
	@$(LAB) clean

quickstart: setup
	@$(PY) examples/quickstart.py

LINTED := $(wildcard src cli tests bench examples tools)

lint: setup
	@$(VENV)/bin/ruff check $(LINTED)
	@$(VENV)/bin/ruff format --check $(LINTED)

typecheck: setup
	@$(VENV)/bin/mypy

pytest: setup chromium postgres lab
	@$(VENV)/bin/pytest -q

# Every benchmark in its quick mode on both stores (about 13 s), so none can rot;
# figures go to a scratch file (bench/results.json holds the full run
# docs/performance.md quotes).
bench-quick: setup postgres
	@$(PY) -m bench --quick \
	  --output $${TMPDIR:-/tmp}/storctl-bench-quick.json >/dev/null

test: lint typecheck pytest bench-quick

# docs/architecture.md's picture of the rooms, redrawn from the code's imports
# (tests/unit/test_docs.py fails while it is stale).
rooms:
	@python3 tools/rooms.py --write

# The soak (docs/reliability.md): 3 workers, 4 CLI loops, simulator faults, workers
# SIGKILLed and PostgreSQL restarted once, for SOAK_MINUTES, on a PostgreSQL cluster
# of its own in var/soak/pg (127.0.0.1:SOAK_PORT; the server on 5432 is untouched),
# then the books. Stops only what it started; the report goes to var/soak/last.json.
SOAK_MINUTES ?= 3
SOAK_PORT ?= 5444
SOAK_SEED ?= 1

soak: setup
	@$(PY) tools/soak.py --minutes $(SOAK_MINUTES) --port $(SOAK_PORT) --seed $(SOAK_SEED)

bench: setup postgres
	@$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
