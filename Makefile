# The two commands of the README:
#   make train   set up, make sure the data is there, train the quickstart
#                model, evaluate it and export it
#   make test    set up and run the test suite
# and, for Bazel users, `make bazel-test`: the suite as one Bazel test per file.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FLAGFILE ?= configs/quickstart.flags
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: train test bazel-test setup data benchmarks clean

train: setup data
	$(PY) train.py --flagfile=$(FLAGFILE)

# Two pytest workers (pytest-xdist), each running whole files: the suite
# waits on subprocesses much of the time, so both cores stay busy.
TEST_WORKERS ?= 2

test: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist=loadfile tests

# Debian's bazel-bootstrap (4.2.3) works offline here: Python is the venv's,
# see WORKSPACE. Tests run TEST_WORKERS at a time, like `make test`.
bazel-test: setup
	@command -v bazel >/dev/null || { \
	  echo "Installing Bazel (Debian package bazel-bootstrap)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq bazel-bootstrap; }
	bazel test --local_test_jobs=$(TEST_WORKERS) //...

setup: $(VENV)/.installed

# The project itself is installed editable, so `import tfvae` and the console
# scripts (tfvae-train, tfvae-export, tfvae-score) work from any folder.
$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed; installing Debian's python3-venv"; \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y python3-venv && \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# Debian ships the full Fashion-MNIST; elsewhere pass --data_dir or let
# keras.datasets download it.
data:
	@if [ -f "$(FASHION_MNIST)" ] || [ -n "$$TFVAE_DATA_DIR" ]; then :; \
	elif command -v apt-get >/dev/null; then \
	  echo "Installing Fashion-MNIST (Debian package dataset-fashion-mnist)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq dataset-fashion-mnist; \
	else echo "No apt-get: train.py will look in --data_dir, \$$TFVAE_DATA_DIR and ~/.keras/datasets, then download."; fi

benchmarks: setup
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) runs
