# Two set-up commands for a fresh Debian machine: `make run` and `make test`.
# Both are idempotent: the venv and Debian packages are installed once, then re-used.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
VQMON  := $(VENV)/bin/vqmon
CONFIG ?= configs/demo.yaml

# Debian packages the tests need: a GStreamer RTSP server driven by the system python3, and
# opencv-data for BRISQUE's model files, a Mosquitto broker (started by the tests themselves), and
# opencv-doc, whose sample videos and photos are footage for the labelled clip generator; systemd
# for `systemd-analyze verify` of the unit files; ffmpeg, whose ebur128 filter the loudness figures are
# checked against.
APT_TEST_PKGS := gir1.2-gst-rtsp-server-1.0 python3-gi python3-gst-1.0 \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly \
	gstreamer1.0-plugins-bad gstreamer1.0-libav opencv-data mosquitto mosquitto-clients opencv-doc systemd ffmpeg
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test soak soak-service eval lint venv dev-venv apt-test-deps demo-clip clean install-service

run: $(VENV)/.stamp-base
	@$(VQMON) demo --output state/demo/demo.mp4 >/dev/null
	$(VQMON) run --config $(CONFIG)

# The outer timeout bounds a hang that pytest-timeout cannot interrupt (a thread stuck in C code).
test: $(VENV)/.stamp-dev apt-test-deps
	timeout -k 30 1200 $(PY) -m pytest -q

# An hour (or more) of generated clean footage through `vqmon analyze`: false alarms per clean
# hour. Generation takes long the first time (cached under state/corpus/soak afterwards).
soak: $(VENV)/.stamp-dev apt-test-deps
	$(PY) -m pytest -q -m soak -s --timeout 0

# The daemon on 8 live RTSP streams with faults for VQMON_SOAK_MIN minutes (30): memory, threads,
# file descriptors and lost alerts.
soak-service: $(VENV)/.stamp-dev apt-test-deps
	$(PY) -m pytest -q -m soak_service -s --timeout 0

# Detection on the generated train and val splits and the untouched dev set, one table each.
eval: $(VENV)/.stamp-dev apt-test-deps
	$(VQMON) eval

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check monitor tests exporters benchmarks
	$(VENV)/bin/ruff format --check monitor tests exporters benchmarks
	$(VENV)/bin/mypy

venv: $(VENV)/.stamp-base
dev-venv: $(VENV)/.stamp-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.stamp-base: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

# The tests export small CLIP models, so they need the export extra (torch from the local
# wheel store, pinned: an unpinned torch would download several GB of CUDA wheels).
$(VENV)/.stamp-dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev,export]'
	touch $@ $(VENV)/.stamp-base

apt-test-deps:
	@missing=""; for p in $(APT_TEST_PKGS); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The systemd units pointing at this checkout, a system user, and an example config if none.
install-service: $(VENV)/.stamp-base
	id vqmon >/dev/null 2>&1 || $(SUDO) useradd --system --home-dir /var/lib/vqmon --shell /usr/sbin/nologin \
		--groups video,render vqmon || $(SUDO) useradd --system --home-dir /var/lib/vqmon --shell /usr/sbin/nologin vqmon
	$(SUDO) install -d -m 0755 /etc/vqmon
	[ -f /etc/vqmon/vqmon.yaml ] || $(SUDO) install -m 0640 -g vqmon configs/example.yaml /etc/vqmon/vqmon.yaml
	for u in vqmon.service vqmon@.service; do \
		sed 's|/opt/vqmon|$(CURDIR)|g' systemd/$$u | $(SUDO) tee /etc/systemd/system/$$u >/dev/null; done
	$(SUDO) systemctl daemon-reload
	@echo "installed; edit /etc/vqmon/vqmon.yaml, then: sudo systemctl enable --now vqmon"

demo-clip: $(VENV)/.stamp-base
	$(VQMON) demo --output state/demo/demo.mp4

clean:
	rm -rf $(VENV) state .pytest_cache .ruff_cache *.egg-info
