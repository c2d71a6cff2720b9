# moisson: the two commands a new user needs are `make demo` and `make test`.
# Both install what they need into .venv first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: help audit lock install demo test unit system-deps lint stack-up stack-down clean bench browser prometheus drills screenshots calibration compose-test compose-prep docker-engine classroom-bench

# `make` alone installs; `make help` lists every target with its `##` line.
.DEFAULT_GOAL := install

help: ## List the targets and what each does (from their `##` comments)
	@awk -F ':.*## ' '/^[A-Za-z0-9_-]+:.*## / { t[++n] = $$1; d[n] = $$2; if (length($$1) > w) w = length($$1) } \
	  END { for (i = 1; i <= n; i++) printf "  %-" w "s  %s\n", t[i], d[i] }' $(MAKEFILE_LIST)

install: $(VENV)/.installed ## Install moisson and its dev tools into .venv (what `make` alone does)

$(VENV)/.installed: pyproject.toml scripts/install.sh constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "moisson needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	PYTHON=$(PYTHON) scripts/install.sh $(VENV) -e '.[dev,embedded]'
	@touch $@

demo: install ## Run the one-command demo: the city, the pipeline and the dashboard, services included
	$(BIN)/moisson demo

# Lint, type-check, architecture contracts, then every test (integration included:
# the tests start Apache Kafka and PostgreSQL themselves unless told where they are).
test: install system-deps lint ## Lint, then every test (integration included; starts Kafka and PostgreSQL itself)
	$(BIN)/pytest --durations=25

# Every apt-get step is in scripts/system-deps.sh (`scripts/system-deps.sh --help`): each
# package only when missing. browser, prometheus and docker-engine install one group each.
system-deps: ## Install Debian packages with apt-get: chromium, fonts-noto-cjk, fontconfig, prometheus (docker.io, debootstrap: only for compose, make docker-engine)
	@scripts/system-deps.sh browser prometheus

# The browser tests drive Debian's Chromium (never a downloaded browser), with Debian's
# Noto CJK fonts so names such as 露露 render as characters, not boxes, in screenshots.
browser: ## Install Debian's Chromium and Noto CJK fonts for the browser tests (apt-get)
	@scripts/system-deps.sh browser

# The reference screenshots in docs/img/: the browser test takes them (into the ignored
# tests/artifacts/, overwritten on every run); this copies the three the README shows.
screenshots: install browser ## Retake the reference screenshots in docs/img/ (browser tests)
	$(BIN)/pytest -p no:cacheprovider tests/moisson/dashboard/test_browser.py -k lulus_story
	mkdir -p docs/img
	cp tests/artifacts/dashboard-overview-end.png docs/img/overview.png
	cp tests/artifacts/dashboard-lulu.png docs/img/lulu.png
	cp tests/artifacts/dashboard-whatif.png docs/img/whatif.png
	$(BIN)/pytest -p no:cacheprovider tests/moisson/classroom/test_room_browser.py
	for f in room-phone-joined room-phone-blacklisted room-phone-refused room-phone-debrief room-projector room-projector-erased; do cp tests/artifacts/$$f.png docs/img/; done

# The room under a full class (60 simulated phones, 5 minutes): bench/results/classroom.json.
classroom-bench: install ## The room under a full class (60 phones, 5 min): bench/results/classroom.json
	$(BIN)/python -m bench.classroom $(ARGS)

# The metrics test scrapes with Debian's Prometheus (2.42), never a downloaded one.
prometheus: ## Install Debian's Prometheus for the metrics test (apt-get)
	@scripts/system-deps.sh prometheus

# docker-compose.yml built and run for real (CI runs it after `make test`; as root): Debian's
# Docker engine, Compose v2 built from its Go module, every image built here, since no
# registry is reachable. What it proves and what runs as a stand-in: tests/compose/README.md.
compose-test: install docker-engine ## Build and run docker-compose.yml on a real Docker engine (as root)
	$(BIN)/pytest --docker tests/compose

# What compose-test needs and no engine does (Compose v2 built from Go, the Debian base),
# into the cache; .ci/run starts it in the background, niced, while `make test` runs.
compose-prep: install docker-engine ## Build what compose-test needs without an engine (Compose v2, Debian base)
	$(BIN)/python -m tests.compose.prepare

docker-engine: ## Install Debian's Docker engine and debootstrap for compose-test (apt-get)
	@scripts/system-deps.sh compose

unit: install ## The tests that need nothing but Python (no service, browser, Docker engine or Go)
	$(BIN)/pytest -m "not integration and not drills and not browser and not docker and not compose"

lint: install ## ruff, ruff format, mypy, import-linter, hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

stack-up: install ## Start the local stack: Kafka and PostgreSQL (moisson stack up)
	$(BIN)/moisson stack up

stack-down: install ## Stop the local stack (moisson stack down)
	$(BIN)/moisson stack down

clean: ## Remove .venv, .moisson and the tools' caches
	rm -rf $(VENV) .moisson .pytest_cache .mypy_cache .ruff_cache *.egg-info

# Crash drills at full size (100k events, ten kills of the processor); `make test`
# runs the same drills at CI size. Results: bench/results/drills.json.
drills: install ## Crash drills at full size (100k events, ten kills): bench/results/drills.json
	DRILLS_SIZE=full $(BIN)/pytest tests/drills

# A week of the default city without the cast, per seed: the share blacklisted and the
# score distribution (README: The calibrated scale). `make calibration ARGS=--help`.
calibration: install ## A week of the default city per seed: who is blacklisted (ARGS=--help)
	$(BIN)/python -m bench.calibration $(ARGS)

# Benchmarks (not tests): ratios against a raw baseline measured in the same run.
# `make bench ARGS=--quick` for a short development run; results in bench/results/latest.json.
bench: install ## Benchmarks against a raw baseline (ARGS=--quick): bench/results/latest.json
	$(BIN)/pip install -q -c constraints.txt -e '.[bench]'
	$(BIN)/python -m bench.run $(ARGS)

# Known vulnerabilities in the installed dependencies (CI runs it after the tests). It
# fails on one, and when pip-audit could not look every package up in PyPI's JSON API:
# pip-audit alone passes an audit of nothing (scripts/audit.py says more).
audit: install ## Known vulnerabilities in the installed dependencies (pip-audit)
	$(BIN)/python scripts/audit.py run

# Re-pin constraints.txt after changing pyproject.toml: every extra resolved together,
# so `make bench` installs within the same pins.
lock: install ## Re-pin constraints.txt after changing pyproject.toml
	$(BIN)/pip install -q -e '.[dev,embedded,bench]'
	@{ sed -n '1,2p' constraints.txt; $(BIN)/pip list --format=freeze --exclude-editable | grep -Ev "^(pip|setuptools|wheel)==" | grep -v '^moisson'; } > constraints.new
	mv constraints.new constraints.txt
