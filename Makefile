# Forethought: the two commands are `make demo` and `make test`. Each bootstraps .venv on a
# fresh machine. GPU users: `make TORCH_SPEC="torch==2.13.0 --index-url <CUDA wheel index>" test`.
PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS     ?= dev,pusht,mujoco
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.installed
# One OpenMP thread per process unless asked otherwise: the two cores here are shared, and two
# spinning OpenMP threads run 5-10x slower than one when another process is busy.
export OMP_NUM_THREADS ?= 1
export OMP_WAIT_POLICY ?= PASSIVE
export MUJOCO_GL ?= egl

.PHONY: install demo test test-all bench clean help
help:
	@echo "make demo      collect TwoRoom, train a world model, plan with it, print the success table (~7 min)"
	@echo "make test      run the fast test suite (bootstraps .venv)"
	@echo "make test-all  run every test, slow ones included"
	@echo "make bench     run the benchmarks in bench/ (tables + JSON in bench/results/)"

install: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, so nothing below pulls a CUDA build on a CPU machine.
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

# The whole loop on TwoRoom: collect, train the small preset, plan with CEM under the honest
# protocol, print the table. About 7 minutes on 2 CPU cores after the install (measured 6 min 54 s);
# every stage resumes where it stopped if interrupted.
DEMO_DATA  ?= data/tworoom
DEMO_RUN   ?= runs/tworoom
DEMO_OUT   ?= reports/tworoom
demo: $(STAMP)
	$(BIN)/forethought collect --env forethought/TwoRoom-v0 --policy smooth --episodes 1000 --steps 100 \
		--out $(DEMO_DATA) --resume
	OMP_NUM_THREADS=2 $(BIN)/forethought train --data $(DEMO_DATA) --preset small --steps 1500 \
		--out $(DEMO_RUN) --resume
	OMP_NUM_THREADS=2 $(BIN)/forethought eval --model $(DEMO_RUN) --planner cem --samples 300 --iterations 30 \
		--horizon 5 --bf16 --noise-beta 3 --episodes 50 --out $(DEMO_OUT) --overwrite
	@echo "GIF: $(DEMO_OUT)/episodes.gif   report: $(DEMO_OUT)/report.json"

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" --timeout 600

test-all: $(STAMP)
	$(BIN)/python -m pytest -q --timeout 1800

bench: $(STAMP)
	$(BIN)/python bench/envs.py
	$(BIN)/python bench/collect.py
	$(BIN)/python bench/store.py
	$(BIN)/python bench/models.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/plan.py
	$(BIN)/python bench/surprise.py

clean:
	rm -rf $(VENV) data/ runs/ reports/ .pytest_cache
