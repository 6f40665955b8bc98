# The two commands of the README:
#   make run   — a fresh checkout to the demo at http://127.0.0.1:8000 (SQLite, embedded MQTT broker)
#   make test  — lint and the whole test suite (PostgreSQL/Redis/Mosquitto when configured)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install messages run test lint bench screenshots clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# What the browser tests load into pages (axe-core for the accessibility audit), pinned in package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

install: $(BIN)/.installed node_modules/.installed

# Translations are compiled from the .po sources with Babel, so no system gettext is needed.
messages: install
	$(BIN)/pybabel compile --domain django --directory fablab_ops/locale

# The demo runs in development mode (DEBUG is off unless set). Its e-mails are saved one file each under
# var/mail/ (git-ignored) and listed on the console in one line each.
run: export DEBUG = 1
run: export EMAIL_BACKEND = fablab_ops.mail.OneFilePerMessageBackend
run: messages
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo "Serving the demo at http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/, API docs: http://$(HOST):$(PORT)/api/docs)"
	@echo "E-mails are saved in $(CURDIR)/var/mail/. Ctrl-C stops everything."
# Ctrl-C or SIGTERM reach the whole process group: each process stops by itself (the machines say goodbye
# within 3 s). When the web server ends, the trap stops the machines, once: it is cleared first, so `kill 0`
# reaching the shell itself does not run it again.
	@trap 'trap - INT TERM EXIT; kill 0 2>/dev/null' INT TERM EXIT; \
	$(BIN)/python manage.py run_demo_machines & \
	$(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)

lint: install
	$(BIN)/ruff check .

test: lint messages
	$(BIN)/python -m pytest

# PNGs of every page, phone and desktop, Vietnamese and English, per role (the accessibility audit's walk).
SCREENSHOTS_DIR ?= screenshots
screenshots: messages
	rm -rf $(SCREENSHOTS_DIR)
	SCREENSHOTS_DIR=$(abspath $(SCREENSHOTS_DIR)) $(BIN)/python -m pytest -p no:cacheprovider -q \
		tests/test_browser_accessibility.py::test_every_page_passes_axe_and_fits_a_phone_for_every_role_in_both_languages
	@echo "Screenshots in $(SCREENSHOTS_DIR)/<role>/<language>-<viewport>/"

bench: install
	for script in bench/[!_]*.py; do $(BIN)/python $$script --quick || exit 1; done

clean:
	rm -rf $(VENV) node_modules db.sqlite3 db.sqlite3-* staticfiles screenshots
