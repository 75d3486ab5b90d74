# Two commands do everything on a fresh Linux machine with Python 3.11:
#   make report   execute every notebook into build/ and export HTML into reports/
#   make test     the test suite (package tests + every notebook under nbval), offline
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

test: $(VENV)/.installed
	$(PY) -m pytest

report: $(VENV)/.installed
	$(VENV)/bin/vaestudy report $(REPORT_ARGS)

.PHONY: venv test report
