# Two entry points (README): `make demo` runs the main job, `make test` the tests.
# Each creates/updates .venv and installs the pinned stack first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.plaid-installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)

.PHONY: setup system-deps demo test clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[tflite,train,adb,export,dev,bench,ray]'
	@touch $(STAMP)

# Debian packages the tests use: the JDK, junit4 and libandroid-json-org-java (Android's
# org.json; the Android runner's Java core is compiled and unit-tested on the host), and adb
# (the --adb-connection cli path), and openssh-server (the SSH tests run a real sshd on loopback).
system-deps:
	@test -f /usr/share/java/junit4.jar && test -f /usr/share/java/json-android.jar && \
	  command -v javac >/dev/null && command -v adb >/dev/null && test -x /usr/sbin/sshd || \
	  ($(SUDO) apt-get update -qq && \
	   $(SUDO) apt-get install -y -qq default-jdk-headless junit4 libandroid-json-org-java adb openssh-server >/dev/null)

# the demo trains two candidates at a time where there are two cores (one thread each)
DEMO_WORKERS ?= $(shell [ "$$(nproc 2>/dev/null || echo 1)" -ge 2 ] && echo 2 || echo 1)

demo: setup
	$(VENV)/bin/plaid arch show df1
	$(VENV)/bin/plaid search --workers $(DEMO_WORKERS)

# the suite runs in TEST_WORKERS processes (pytest-xdist), a test file per process at a time:
# one per core up to 4 (0 = all in this process)
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)

test: setup system-deps
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
