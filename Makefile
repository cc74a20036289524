# tfgap: the two commands a newcomer needs are `make demo` and `make test`; both install first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Renderer for dm_control; tfgap.envs picks EGL then OSMesa when this is unset.
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: install test test-fast demo bench clean

install: $(STAMP)

$(STAMP): requirements.txt setup.py scripts/install_system_deps.sh
	./scripts/install_system_deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

demo: install
	$(PY) -m tfgap.launch.train --root_dir runs/demo --gin_file tfgap/launch/configs/demo.gin

bench: install
	$(PY) benchmarks/networks.py
	$(PY) benchmarks/envs.py
	$(PY) benchmarks/replay.py
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
