# radtool: make demo · make test · make bench
# PYTHON picks the interpreter (e.g. `PYENV_VERSION=3.12.1 make demo PYTHON=python3.12`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# This machine's torch: pip finds these two on local disk for Python 3.11 (other Pythons download them).
# The packages themselves only declare ranges; a user with their own CUDA torch keeps it.
TORCH_PIN ?= "torch==2.14.1" "torchvision==0.29.1"

.PHONY: install demo test bench bench-scale eval check-py312 clean

$(STAMP): pyproject.toml plugins/vision/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e ".[dev,dask]" -e plugins/vision
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/radtool parse corpora/openi/reports.csv --out out/openi --schema chexpert

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: $(STAMP)
	$(BIN)/python benchmarks/eval_openi.py
	$(BIN)/python benchmarks/bench_startup.py
	$(BIN)/python benchmarks/bench_parse.py
	@if [ -f benchmarks/bench_similarity.py ]; then $(BIN)/python benchmarks/bench_similarity.py; fi
	@if [ -f benchmarks/bench_vision.py ]; then $(BIN)/python benchmarks/bench_vision.py; fi

bench-scale: $(STAMP)
	$(BIN)/python benchmarks/bench_scale.py

eval: $(STAMP)
	$(BIN)/python benchmarks/eval_openi.py

# The core on Python 3.12 (spaCy 3.8 there, as medspaCy requires): fresh venv, install, parse 10 reports.
PY312 ?= python3.12
check-py312:
	rm -rf .venv-py312 out/py312
	PYENV_VERSION=$${PYENV_VERSION:-3.12.1} $(PY312) -m venv .venv-py312
	.venv-py312/bin/python -m pip install --quiet --upgrade pip
	.venv-py312/bin/python -m pip install --quiet -e .
	.venv-py312/bin/radtool --version
	mkdir -p out
	.venv-py312/bin/python -c "import csv,sys; r=csv.reader(open('corpora/openi/reports.csv',newline='',encoding='utf-8')); w=csv.writer(open('out/py312-10.csv','w',newline='',encoding='utf-8')); [w.writerow(row) for _,row in zip(range(11),r)]"
	.venv-py312/bin/radtool parse out/py312-10.csv --out out/py312 -q
	.venv-py312/bin/python -c "import csv; rows = list(csv.reader(open('out/py312/labels.csv'))); assert len(rows) == 11, rows; print('check-py312: 10 reports parsed on', __import__('sys').version.split()[0])"

clean:
	rm -rf out .pytest_cache .venv-py312
