# Everything runs from .venv; the first target that needs it creates it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOWEST := .venvs/lowest
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: serve test test-versions bench-reload bench bench-proxy bench-floors bench-browser profile stress \
	lint format \
	clean dist

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	cd sample_site && ../$(BIN)/hyper2web serve public --port 5000

# The oldest protocol libraries pyproject.toml allows (scripts/lowest.txt), in a venv of
# their own.
$(LOWEST)/.installed: pyproject.toml scripts/lowest.txt
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install --quiet --upgrade pip
	$(LOWEST)/bin/pip install --quiet -e '.[test]' -r scripts/lowest.txt
	touch $@

# The whole suite; then the protocol tests again with the tuned h2 paths off (stock h2),
# and on the oldest h2, hpack, hyperframe and h11 allowed.
test: lint $(LOWEST)/.installed
	$(BIN)/pytest
	HYPER2WEB_TUNED=0 $(BIN)/pytest -q -p no:cacheprovider tests/server tests/static
	$(LOWEST)/bin/pytest -q -p no:cacheprovider tests/server tests/static

# ruff, and mypy on hyper2web/ and hyper2web_cli/ (strict on the public API).
lint: $(STAMP)
	$(BIN)/ruff check hyper2web hyper2web_cli tests
	$(BIN)/mypy

# A wheel in dist/: pip install dist/hyper2web-*.whl, or pipx install dist/hyper2web-*.whl.
dist: $(STAMP)
	$(BIN)/pip wheel --no-deps --wheel-dir dist .

format: $(STAMP)
	$(BIN)/ruff format hyper2web hyper2web_cli tests
	$(BIN)/ruff check --fix hyper2web hyper2web_cli tests

clean:
	rm -rf $(VENV) .venvs build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

test-versions:
	scripts/test-versions

bench-reload: $(STAMP)
	$(BIN)/python bench/reload_latency.py

# The peers (hypercorn, starlette, granian) are tools of bench/, never runtime dependencies.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/proxy_bench.py

# A proxied JSON route: hyper2web vs nginx proxy_pass vs caddy reverse_proxy (bench/PROXY.md).
bench-proxy: $(BENCH_STAMP)
	$(BIN)/python bench/proxy_bench.py

# What curio and Python's ssl can reach at best on this host, per target (bench/FLOORS.md).
bench-floors: $(BENCH_STAMP)
	$(BIN)/python bench/floors.py

# Page loads in headless Chromium: hyper2web vs vite's dev server vs caddy (bench/BROWSER.md).
# vite lives in bench/browser/ (package.json and package-lock.json pin it; node_modules is
# installed here, never committed).
VITE_DIR := bench/browser
VITE_INSTALLED := $(VITE_DIR)/node_modules/.package-lock.json

$(VITE_INSTALLED): $(VITE_DIR)/package.json $(wildcard $(VITE_DIR)/package-lock.json)
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
		echo "bench-browser needs node (^20.19 or >= 22.12) and npm:" \
			"sudo apt-get install nodejs npm"; exit 1; }
	cd $(VITE_DIR) && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; \
		else npm install --no-audit --no-fund; fi
	touch $@

bench-browser: $(BENCH_STAMP) $(VITE_INSTALLED)
	$(BIN)/python bench/browser_bench.py

# Attacks on a real hyper2web serve (loopback, about 3 minutes); writes bench/STRESS.md.
stress: $(STAMP)
	$(BIN)/python bench/stress.py

# Where the time goes in S1, S3, S4h and S10 (py-spy); LABEL names bench/profiles/LABEL.md.
profile: $(BENCH_STAMP)
	$(BIN)/python bench/profile.py $(LABEL)
