# The two commands: `make demo` and `make test`. Each sets up .venv on a fresh machine first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EXAMPLE := examples/retail-vision
PG_READY = pg_isready -q -h 127.0.0.1 -p 5432
REDIS_READY = redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1

.PHONY: demo test lint setup services browser clean bench-gateway bench-drift bench-response bench-capacity bench-replicas

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

$(EXAMPLE)/artifacts/.trained: $(VENV)/.installed $(EXAMPLE)/train.py
	$(PY) $(EXAMPLE)/train.py
	touch $@

demo: setup $(EXAMPLE)/artifacts/.trained
	$(VENV)/bin/modelfleet demo

# Tests run against the real PostgreSQL and Redis of this machine; start them if they are down.
services:
	@$(PG_READY) || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@$(REDIS_READY) || redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
	  --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
	@for i in 1 2 3 4 5 6 7 8 9 10; do $(PG_READY) && $(REDIS_READY) && exit 0; sleep 1; done; \
	  echo "PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) is not accepting connections" >&2; exit 1

# The browser tests drive the system's Chromium (Debian package `chromium`); Playwright never
# downloads a browser. Without it those tests fail and say so.
browser:
	@command -v chromium >/dev/null || apt-get install -y chromium || \
	  echo "could not install Chromium (apt-get install -y chromium): the browser tests will fail" >&2

lint: setup
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test: setup services browser lint
	$(PY) -m pytest

# A benchmark, not a test: about 15 minutes; installs each compared server into .bench/.
bench-gateway: setup
	$(PY) benchmarks/gateway/run.py

# A benchmark, not a test: drift statistics on 1,000,000 x 20 against Evidently, installed into
# .bench/evidently on first use.
bench-drift: setup
	$(PY) benchmarks/drift.py

# A benchmark, not a test: six fault drills and a fault-free week on a virtual clock (~4 min).
bench-response: setup $(EXAMPLE)/artifacts/.trained
	$(PY) benchmarks/response.py

# A benchmark, not a test: predictive, reactive and static scaling on a seeded 3-week trace (~5 s).
bench-capacity: setup
	$(PY) benchmarks/capacity.py

clean:
	rm -rf $(VENV) .modelfleet $(EXAMPLE)/artifacts

# A benchmark, not a test: one and two Ray Serve replicas of a light and an accelerator-bound
# model behind the gateway's batcher, on a local Ray cluster (~2 min).
bench-replicas: setup
	$(PY) benchmarks/ray_replicas.py
