# mmmcl: install the tested stack, run the tests, run the demo.
#   make install            # into ./.venv (created if needed)
#   make install VENV=      # into the python on PATH
#   make test               # quick tests; make test PYTEST_ARGS= for all
#   make demo               # the main job; DEMO_ARGS="--out FILE" etc.
VENV ?= .venv
ifeq ($(strip $(VENV)),)
PY := python
else
PY := $(VENV)/bin/python
endif
# one test process per core (pytest-xdist), one intra-op thread each
PYTEST_ARGS ?= -q -m "not slow" -n auto
DEMO_ARGS ?=

.PHONY: install test demo clean

install:
	VENV=$(VENV) bash tools/install.sh

# pytest exits 5 when it collected no test: that is a failure here.
test: install
	@OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest tests $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then \
		echo "make test: pytest collected no tests" >&2; exit 1; \
	fi; \
	exit $$rc

demo: install
	$(PY) tools/run_demo.py $(DEMO_ARGS)

# Build and test leftovers only: .venv and work_dirs (results) stay.
clean:
	rm -rf build dist *.egg-info .pytest_cache mmmcl/.mim
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune \
		-exec rm -rf {} +
