# Two commands on a fresh machine:
#   make demo   provision data, release lesson 25, grade the sample submissions, write reports
#   make test   lint, type-check and run the test suite; with CI=true (as in CI) the slow
#               end-to-end runs too
# Both create or reuse the virtual environment in .venv and install what they need,
# Debian packages included when run as root.

VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DEBS    := bubblewrap
# what only the tests need: a headless browser for the HTML reports, a PostgreSQL server
TEST_DEBS := chromium chromium-driver postgresql

# the slow end-to-end runs (minutes of CNN training on a CPU) run where CI=true
PYTEST_ARGS ?= $(if $(filter true,$(CI)),,-m "not slow")

.PHONY: demo test lint system-packages clean

demo: $(STAMP)
	$(BIN)/autograder datasets
	$(BIN)/autograder release lesson25
	$(BIN)/autograder collect lesson25 --from grading_tests/lesson25/samples
	$(BIN)/autograder grade lesson25 --workers 2 || test $$? -eq 1

test: $(STAMP) lint
	@$(MAKE) --no-print-directory system-packages DEBS="$(DEBS) $(TEST_DEBS)"
	$(BIN)/autograder datasets
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check autograder tests grading_tests benchmarks
	$(BIN)/ruff format --check autograder tests grading_tests benchmarks
	$(BIN)/mypy

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

system-packages:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; \
	fi

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
