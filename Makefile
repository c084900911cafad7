# radtool: make demo · make test · make bench
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench eval clean

$(STAMP): pyproject.toml plugins/vision/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/python -m pip install --quiet -e ".[dev]" -e plugins/vision
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/radtool parse corpora/openi/reports.csv --out out/openi --schema chexpert

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: $(STAMP)
	$(BIN)/python benchmarks/eval_openi.py
	$(BIN)/python benchmarks/bench_parse.py
	@if [ -f benchmarks/bench_similarity.py ]; then $(BIN)/python benchmarks/bench_similarity.py; fi
	@if [ -f benchmarks/bench_vision.py ]; then $(BIN)/python benchmarks/bench_vision.py; fi

clean:
	rm -rf out .pytest_cache

eval: $(STAMP)
	$(BIN)/python benchmarks/eval_openi.py
