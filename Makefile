# make run     : set up .venv (first time), build the in-browser page, start the dashboard on the shipped model,
#                on this machine only (ADDRESS=0.0.0.0 opens it to a network: see docs/security.md)
# make test    : the same set-up plus test-only tools (pytest, Playwright, Debian's chromium, TF.js), then the suite
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

.PHONY: run test setup setup-dev weights browser lint bench clean

# Without npm the dashboard still starts; its "Live in your browser" page then says how to build it.
run: setup weights
	-@$(MAKE) --no-print-directory browser
	$(BIN)/streamlit run app.py --server.port $(PORT) --server.address $(ADDRESS)

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
	touch $@

# ImageNet MobileNetV2 weights for training, copied into the Keras cache when ../shared has them.
weights:
	@f=mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5; \
	if [ ! -f "$(KERAS_MODELS)/$$f" ] && [ -f "$(SHARED)/weights/$$f" ]; then \
		mkdir -p "$(KERAS_MODELS)" && cp "$(SHARED)/weights/$$f" "$(KERAS_MODELS)/" && echo "copied $$f into $(KERAS_MODELS)"; fi

lint: setup-dev
	$(BIN)/ruff check facemask app.py ui.py app_pages browser_live tests bench tools

bench: setup
	$(BIN)/python bench/latency.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache browser_live/frontend/build
