# Two commands do everything on a fresh Linux machine with Python 3.11:
#   make report   execute every notebook into build/ and export HTML into reports/
#   make test     the test suite (package tests + every notebook executed once and checked), offline
#   make test-fast  the inner loop: pytest -m "not slow" (no notebook, rank or server)
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
# torch is installed first, on its own, from TORCH_SPEC (and TORCH_INDEX, when set, as pip's --index-url).
# The default pin resolves to a CPU build on this project's machines (their wheelhouse holds 2.13.0+cpu); from PyPI
# alone, Linux wheels are CUDA builds. A GPU box picks its CUDA build, e.g.
#   make venv TORCH_SPEC=torch TORCH_INDEX=https://download.pytorch.org/whl/cu128
# and a CPU-only machine without that wheelhouse can skip the CUDA libraries with
#   TORCH_INDEX=https://download.pytorch.org/whl/cpu
# Chosen once, when .venv is created: to change it, rm -rf .venv first.
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--index-url '$(TORCH_INDEX)') '$(TORCH_SPEC)'
	$(PY) -m pip install --quiet -e '.[test,lab]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "vaestudy (python3)" >/dev/null
	touch $@

venv: $(VENV)/.installed

# headless Chromium for tests/test_browser.py (Debian's package; Playwright's own browser download is not used)
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium (apt) for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
		echo "$(CHROMIUM) is missing; install it with:"; \
		echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium"; \
		exit 1; \
	fi

# the tests run offline (no hub download; .ci/run sets it too); other targets may reach the hub, e.g. make report
# REPORT_ARGS="--weights pretrained" downloads the VAEs it loads
test test-fast: export HF_HUB_OFFLINE = 1

test: $(VENV)/.installed browser
	$(PY) -m pytest --durations=15 $(PYTEST_ARGS)

test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow" --durations=15 $(PYTEST_ARGS)

# notebook 01 executed for every registry family (tiny configs); CI runs it after make test
test-families: export HF_HUB_OFFLINE = 1
test-families: export VAESTUDY_ALL_FAMILIES = 1
test-families: $(VENV)/.installed
	$(PY) -m pytest tests/test_notebooks_families.py --durations=15 $(PYTEST_ARGS)

report: $(VENV)/.installed
	$(VENV)/bin/vaestudy report $(REPORT_ARGS)

# on a GPU box: every command and notebook on CUDA at small sizes; prints "skipped: no CUDA device" elsewhere
gpu-check: $(VENV)/.installed
	$(PY) scripts/gpu_check.py $(GPU_CHECK_ARGS)

# the three figures the README shows, from the last report run (figures/ itself is not tracked)
README_FIGURES = 07_study_guide_01.png 02_tiling_and_seams_01.png 07_study_guide_09.png
readme-figures:
	@for f in $(README_FIGURES); do test -f figures/$$f || { echo "figures/$$f is missing: run make report first"; exit 1; }; done
	mkdir -p docs/figures && cp $(addprefix figures/,$(README_FIGURES)) docs/figures/

.PHONY: venv browser test test-fast test-families report gpu-check readme-figures
