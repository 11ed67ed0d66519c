# transfernas — `make run` sets up and runs the default pipeline, `make test` sets up and tests.
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
export KEDRO_DISABLE_TELEMETRY := true
export RAY_USAGE_STATS_ENABLED := 0
export TRANSFERNAS_WHEELS ?= $(HOME)/.cache/transfernas/wheels

.PHONY: install run test lint viz mlflow-ui benchmarks gpu-check clean

# torch first, pinned, from the machine's local wheels (a plain `torch` requirement would pull
# a multi-GB CUDA build); then mmcv 2.1.0 with the compiled CPU ops mmdet and mmseg use, from a
# wheel that scripts/build_mmcv.py builds once (~4 min on 2 cores) into $(TRANSFERNAS_WHEELS)
# outside the clone and reuses afterwards; then the project, OpenMMLab included, pinned by
# requirements.lock.
$(VENV)/.installed: pyproject.toml requirements.lock scripts/build_mmcv.py
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) scripts/build_mmcv.py
	$(PY) -m pip install --quiet "$$($(PY) scripts/build_mmcv.py)" -c requirements.lock
	$(PY) -m pip install --quiet -e ".[dev]" -c requirements.lock
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/kedro run

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

viz: install
	$(BIN)/kedro viz run --host 127.0.0.1 --port 4141 --no-browser

mlflow-ui: install  # prints the URL that opens the model-training view, then serves the UI
	$(PY) scripts/mlflow_ui.py --host 127.0.0.1 --port 5000

benchmarks: install
	$(PY) benchmarks/nb201_baselines.py

gpu-check: install  # every CUDA path briefly → benchmarks/results/gpu_check.json; no CUDA: exit 0
	$(PY) benchmarks/gpu_check.py

clean:  # everything the pipelines wrote (durable search state included); data/01_raw stays
	find data/02_intermediate data/03_primary data/06_models data/07_model_output data/08_reporting \
		-mindepth 1 ! -name .gitkeep -delete
	rm -rf mlflow.db mlruns
