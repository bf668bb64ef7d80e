# make run     : set up .venv (first time), build the in-browser page, start the dashboard on the shipped model,
#                on this machine only (ADDRESS=0.0.0.0 opens it to a network: see docs/security.md);
#                serve.py is app.py plus long-lived caching and compression of the static files
# make test    : the same set-up plus test-only tools (pytest, Playwright, Debian's chromium, TF.js,
#                GStreamer's RTSP server and PostgreSQL for the camera and records tests), then the suite
# make monitor : the same as run, plus `facemask watch` on the cameras of CAMERAS=cameras.toml
# make browser : (re)build the "Live in your browser" component (npm packages pinned in package-lock.json)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
SHARED ?= ../shared
PORT   ?= 8501
ADDRESS ?= 127.0.0.1
KERAS_MODELS := $(if $(KERAS_HOME),$(KERAS_HOME),$(HOME)/.keras)/models

BROWSER_BUILD := browser_live/frontend/build/BUILT
BROWSER_SOURCES := browser_live/frontend/build.mjs browser_live/frontend/index.html browser_live/frontend/check.js \
	browser_live/frontend/style.css $(wildcard browser_live/frontend/src/*.js) \
	facemask/assets/face_detection_short_range.tflite

.PHONY: run monitor test setup setup-dev weights browser lint bench clean

# Without npm the dashboard still starts; its "Live in your browser" page then says how to build it.
run: setup weights
	-@$(MAKE) --no-print-directory browser
	$(BIN)/streamlit run serve.py --server.port $(PORT) --server.address $(ADDRESS)

# make monitor CAMERAS=cameras.toml : the camera watcher and the dashboard together; Ctrl+C
# stops both (the watcher flushes its records on the way out).
monitor: setup weights
	@test -n "$(CAMERAS)" || { echo 'Say which cameras: make monitor CAMERAS=cameras.toml ([cameras] NAME = "URL" lines)'; exit 2; }
	$(BIN)/python -m facemask watch --cameras "$(CAMERAS)" & watcher=$$!; \
	trap 'kill -TERM $$watcher 2>/dev/null; wait $$watcher' EXIT INT TERM; \
	$(BIN)/streamlit run serve.py --server.port $(PORT) --server.address $(ADDRESS)

test: setup-dev browser
	$(BIN)/python -m pytest -q

browser: $(BROWSER_BUILD)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(BROWSER_BUILD): node_modules/.installed $(BROWSER_SOURCES)
	node browser_live/frontend/build.mjs

setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt requirements-nodeps.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt -r requirements.txt
	$(PIP) install -q --no-deps -r requirements-nodeps.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt node_modules/.installed
	$(PIP) install -q -c constraints.txt -r requirements-dev.txt
	sh scripts/install-browser.sh
	sh scripts/install-test-services.sh
	touch $@

# ImageNet MobileNetV2 weights for training, copied into the Keras cache when ../shared has them.
weights:
	@f=mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5; \
	if [ ! -f "$(KERAS_MODELS)/$$f" ] && [ -f "$(SHARED)/weights/$$f" ]; then \
		mkdir -p "$(KERAS_MODELS)" && cp "$(SHARED)/weights/$$f" "$(KERAS_MODELS)/" && echo "copied $$f into $(KERAS_MODELS)"; fi

lint: setup-dev
	$(BIN)/ruff check facemask app.py serve.py ui.py app_pages browser_live harness tests bench tools

bench: setup
	$(BIN)/python bench/latency.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache browser_live/frontend/build
