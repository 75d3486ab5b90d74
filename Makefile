# Two commands do everything on a fresh Linux machine with Python 3.11:
#   make report   execute every notebook into build/ and export HTML into reports/
#   make test     the test suite (package tests + every notebook executed once and checked), offline
#   make test-fast  the inner loop: pytest -m "not slow" (no notebook, rank or server)
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
export HF_HUB_OFFLINE = 1

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: 2.13.0 is a CPU build here; an open range pulls a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
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

test: $(VENV)/.installed browser
	$(PY) -m pytest --durations=15 $(PYTEST_ARGS)

test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow" --durations=15 $(PYTEST_ARGS)

report: $(VENV)/.installed
	$(VENV)/bin/vaestudy report $(REPORT_ARGS)

# on a GPU box: every command and notebook on CUDA at small sizes; prints "skipped: no CUDA device" elsewhere
gpu-check: $(VENV)/.installed
	$(PY) scripts/gpu_check.py $(GPU_CHECK_ARGS)

.PHONY: venv browser test test-fast report gpu-check
