# `make test` and `make demo` work on a fresh machine: they create .venv and install into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build of torch; a bare `torch` requirement with nothing installed pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
export OMP_NUM_THREADS ?= 2

.PHONY: jemalloc install test test-slow test-deepspeed test-browser gpu-check serve demo demo-train reference-model bench clean lcsts xwlb-story xwlb-program xwlb-program-onepass xwlb-program-onepass-whole general xwlb-story-bart xwlb-program-bart xwlb-story-led xwlb-program-led

# jemalloc (reformer_zh/allocator.py: scripts/train.py re-executes under it when installed) trains
# long inputs 2.4x faster than glibc as it comes. Installed where apt-get runs as root; anywhere
# else this is a no-op and train.py says what it would change. Never fatal: no network, no root.
JEMALLOC := /usr/lib/x86_64-linux-gnu/libjemalloc.so.2
jemalloc:
	@if [ -e $(JEMALLOC) ] || [ -e /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get install -y -q libjemalloc2 >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && \
		apt-get install -y -q libjemalloc2 >/dev/null 2>&1)) && echo "installed libjemalloc2" || \
		echo "libjemalloc2 could not be installed (apt-get failed): training keeps glibc"; \
	else echo "libjemalloc2 not installed (needs apt-get as root): training keeps glibc"; fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: jemalloc $(VENV)/.installed

# every test but the slow ones (training runs, wheel builds, fresh processes: `make test-slow`)
# and the browser's (`make test-browser`, after it installs Chromium); .ci/run runs all three
test: install
	$(PY) -m pytest -q tests -m "not slow" --ignore=tests/serving/test_serve_browser.py

test-slow: install
	$(PY) -m pytest -q tests -m slow --ignore=tests/serving/test_serve_browser.py

# The DeepSpeed tests (tests/training/test_sharding.py; skipped by `make test`): DeepSpeed's sdist builds
# against the installed torch, so it goes into a second venv that sees .venv's packages.
DS_VENV := .venv-deepspeed
test-deepspeed: install
	$(PYTHON) -m venv $(DS_VENV)
	$(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > $(DS_VENV)/lib/python$$($(PY) -c "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')")/site-packages/main-venv.pth
	$(DS_VENV)/bin/python -m pip install -q wheel "setuptools>=77"
	DS_BUILD_OPS=0 $(DS_VENV)/bin/python -m pip install -q --no-build-isolation "deepspeed>=0.19"
	$(DS_VENV)/bin/python -m pytest -q tests/training/test_sharding.py

# The page of reformer-zh-serve in a real headless Chromium (tests/serving/test_serve_browser.py; it skips
# where no browser is installed, and fails instead under CI=true, as .ci/run sets): Debian's chromium and chromium-driver where
# apt-get runs as root (and a Chinese font for the screenshot), selenium from PyPI. The screenshot lands in
# outputs/serve_page.png (the README shows docs/serve_page.png, a copy of one).
test-browser: install
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
		(apt-get install -y -q chromium chromium-driver fonts-wqy-microhei >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && \
		apt-get install -y -q chromium chromium-driver fonts-wqy-microhei >/dev/null 2>&1)) || echo "could not install chromium (needs apt-get as root)"
	$(PY) -c "import selenium" 2>/dev/null || $(PY) -m pip install -q "selenium>=4.20"
	mkdir -p outputs && SERVE_SCREENSHOT=outputs/serve_page.png $(PY) -m pytest -q -rs tests/serving/test_serve_browser.py

# for a GPU lent for a few minutes (benchmarks/gpu_check.py): CUDA equivalence (reversible replay,
# LSH against the CPU, cached generation) and bf16 training steps at 4K/16K/64K tokens against LED
gpu-check: install
	$(PY) benchmarks/gpu_check.py --out benchmarks/results/gpu_check.json

# the page that shows where each summary character came from, with the shipped model
serve: install
	$(VENV)/bin/reformer-zh-serve

# summarizes with the model that ships in reformer_zh/reference_model/ (nothing is trained)
demo: install
	$(PY) scripts/demo.py

# the training path on the embedded sample: a tiny model, a few minutes
demo-train: install
	$(PY) scripts/demo_train.py

# The recommended recipes (scripts/recipe.py): train from nothing on ../shared/data, print validation
# scores beside the first-sentence baseline, leave the checkpoint in outputs/<recipe>/; the shipped
# model's successor is a reported system, so `make reference-model` scores dev_test too (ledgered).
lcsts: install
	$(PY) scripts/recipe.py lcsts

# the model that ships in reformer_zh/reference_model/: 120 training minutes from nothing, a
# checkpoint every 20; `make reference-model RESUME=1` continues an interrupted run
reference-model: install
	$(PY) scripts/recipe.py reference-model --dev_test $(if $(RESUME),--resume,)

# issue 43's general model: the shipped model fine-tuned on every shared set together
# (reformer_zh/training/mixture.py), scored on xwlb story validation; benchmarks/yardstick.py scores the rest
# Its batches change shape: jemalloc's page decay on, or its memory grows (reformer_zh/allocator.py, JEMALLOC_CONF).
general: install
	MALLOC_CONF=dirty_decay_ms:10000,muzzy_decay_ms:0 $(PY) scripts/recipe.py general

xwlb-story: install
	$(PY) scripts/recipe.py xwlb-story

# fine-tunes outputs/xwlb-story (run `make xwlb-story` first) on whole evenings of news
xwlb-program: install
	$(PY) scripts/recipe.py xwlb-program

xwlb-program-onepass: install
	$(PY) scripts/recipe.py xwlb-program-onepass

# the one-pass model's second stage: whole evenings, from outputs/xwlb-program-onepass
xwlb-program-onepass-whole: install
	$(PY) scripts/recipe.py xwlb-program-onepass-whole

# the side-by-side's BART (1,024 positions): the same two recipes
xwlb-story-bart: install
	$(PY) scripts/recipe.py xwlb-story-bart

xwlb-program-bart: install
	$(PY) scripts/recipe.py xwlb-program-bart

# and its LED (sliding-window attention, 16,384 learned positions)
xwlb-story-led: install
	$(PY) scripts/recipe.py xwlb-story-led

xwlb-program-led: install
	$(PY) scripts/recipe.py xwlb-program-led

bench: install
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/scaling.py --out benchmarks/results/scaling.json
	$(PY) benchmarks/plot.py
	$(PY) benchmarks/generate.py --out benchmarks/results/generate.json

clean:
	rm -rf $(VENV) $(DS_VENV) build *.egg-info .pytest_cache
