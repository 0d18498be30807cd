# Two commands for a newcomer: `make run` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
STAMP := $(VENV)/.synced
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GX_ANALYTICS_ENABLED := False
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

.PHONY: run test bench lint fmt clean venv ui serve deploy worker

venv: $(STAMP)

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# The project's own modules are compiled too: where PYTHONDONTWRITEBYTECODE is set, every
# command would otherwise compile them again (0.15 s a night).
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	$(VENV)/bin/python -m compileall -q flows warehouse transforms expectations deployments
	@touch $@

# Ingest the sample inbox shipped in the repo into ./data, then show what landed. Prefect's
# home stays in the repo (removed by `make clean`): only the first run pays for creating its
# database (about 5 s), and ~/.prefect and `make ui`'s server database are left alone.
RUN_PREFECT_HOME ?= $(CURDIR)/.prefect/run
run: $(STAMP)
	@mkdir -p "$(RUN_PREFECT_HOME)"
	PREFECT_HOME="$(RUN_PREFECT_HOME)" WIREHOUSE_HOME=data WIREHOUSE_SETTLE_SECONDS=0 \
	  $(VENV)/bin/wirehouse ingest --inbox samples/inbox
	@echo
	WIREHOUSE_HOME=data $(VENV)/bin/wirehouse sql \
	  "SELECT layout, count(*) AS articles, min(published_at) AS first, max(published_at) AS last FROM articles GROUP BY ALL ORDER BY articles DESC"
	@echo
	@echo "Try:  $(VENV)/bin/wirehouse --home data sql \"SELECT title, published_at, dateline FROM articles WHERE source = 'Xinhua' ORDER BY published_at\""
	@echo "  or: $(VENV)/bin/wirehouse --home data shell"

# Schedule and monitoring (README): `make ui` in one terminal, `make serve` in another.
UI_PORT ?= 4200
UI_API := http://127.0.0.1:$(UI_PORT)/api

ui: $(STAMP)
	WIREHOUSE_UI_PORT=$(UI_PORT) scripts/ui.sh

# Serves the sample inbox into ./data unless WIREHOUSE_HOME / WIREHOUSE_INBOX say otherwise.
serve: $(STAMP)
	PREFECT_API_URL=$(UI_API) $(VENV)/bin/wirehouse --home "$${WIREHOUSE_HOME:-data}" serve \
	  --inbox "$${WIREHOUSE_INBOX:-samples/inbox}"

# The same deployment for a process work pool and its worker, from deployments/prefect.yaml;
# then the on-call alerts of deployments/automations.yaml (when WIREHOUSE_ALERT_URL is set).
deploy: $(STAMP)
	PREFECT_API_URL=$(UI_API) $(VENV)/bin/prefect work-pool create wirehouse --type process --overwrite
	PREFECT_API_URL=$(UI_API) $(VENV)/bin/prefect --no-prompt deploy --prefect-file deployments/prefect.yaml --all
	PREFECT_API_URL=$(UI_API) $(VENV)/bin/python -m deployments.alerts  # WIREHOUSE_ALERT_URL

worker: $(STAMP)
	PREFECT_API_URL=$(UI_API) $(VENV)/bin/prefect worker start --pool wirehouse

test: $(STAMP)
	$(VENV)/bin/pytest

# bench.load and bench.fuzz_nights at sizes for one sitting; their full runs (a 60,000-dump night
# beside eight readers, nights of 50,000 hostile inputs) are `python -m bench.load --rounds 2`
# and `python -m bench.fuzz_nights --nights N --dumps 50000`.
bench: $(STAMP)
	$(VENV)/bin/python -m bench.run
	$(VENV)/bin/python -m bench.floor
	$(VENV)/bin/python -m bench.cost
	$(VENV)/bin/python -m bench.neardup_speed
	$(VENV)/bin/python -m bench.lake
	$(VENV)/bin/python -m bench.eval_generic
	$(VENV)/bin/python -m bench.eval_multilingual
	$(VENV)/bin/python -m bench.search
	$(VENV)/bin/python -m bench.load --dumps 20000 --base 2000 --rounds 1
	$(VENV)/bin/python -m bench.fuzz_nights --nights 1 --dumps 10000

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf data .prefect .pytest_cache .mypy_cache .ruff_cache
