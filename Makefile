# The two commands: `make demo` and `make test`. Everything else is a step they use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# A development-only key for tests; production must set SECRET_KEY (settings refuse otherwise).
TEST_SECRET_KEY := test-only-secret-key-not-for-production

.PHONY: demo test venv lint format run worker clean

$(VENV)/.installed: pyproject.toml
	@py=$$(./scripts/find-python) || exit 1; \
	  if [ ! -x $(PY) ]; then echo "Creating $(VENV) with $$py"; "$$py" -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

demo: venv
	DEBUG=1 DATABASE_URL= REDIS_URL= $(PY) manage.py migrate --noinput
	DEBUG=1 DATABASE_URL= REDIS_URL= $(PY) manage.py load_demo
	@echo "Serving on http://127.0.0.1:8000 with a task worker beside it (Ctrl-C stops both)"
	DEBUG=1 DATABASE_URL= REDIS_URL= PYTHON=$(PY) ./scripts/demo 127.0.0.1:8000

test: venv
	SECRET_KEY=$${SECRET_KEY:-$(TEST_SECRET_KEY)} $(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

worker: venv
	$(VENV)/bin/celery -A evalsite worker -Q default,imports,reports --loglevel=INFO

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* *.egg-info .demo-queue
