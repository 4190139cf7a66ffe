# `make test` and `make demo` work on a fresh machine: they create .venv and install into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build of torch; a bare `torch` requirement with nothing installed pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
export OMP_NUM_THREADS ?= 2

.PHONY: install test demo bench clean lcsts xwlb-story xwlb-program xwlb-story-bart xwlb-program-bart

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q tests

demo: install
	$(PY) scripts/demo.py

# The recommended recipes (scripts/recipe.py): train from nothing on ../shared/data, print dev_test
# scores beside the first-sentence baseline, leave the checkpoint in outputs/<recipe>/.
lcsts: install
	$(PY) scripts/recipe.py lcsts

xwlb-story: install
	$(PY) scripts/recipe.py xwlb-story

# fine-tunes outputs/xwlb-story (run `make xwlb-story` first) on whole evenings of news
xwlb-program: install
	$(PY) scripts/recipe.py xwlb-program

# the side-by-side's BART (1,024 positions): the same two recipes
xwlb-story-bart: install
	$(PY) scripts/recipe.py xwlb-story-bart

xwlb-program-bart: install
	$(PY) scripts/recipe.py xwlb-program-bart

bench: install
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/scaling.py --out benchmarks/results/scaling.json
	$(PY) benchmarks/plot.py
	$(PY) benchmarks/generate.py --out benchmarks/results/generate.json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
