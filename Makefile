# make run  : set up .venv (first time) and start the dashboard on the shipped default model
# make test : the same set-up plus test-only tools (pytest, Playwright, Debian's chromium, TF.js), then the suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
SHARED ?= ../shared
PORT   ?= 8501
KERAS_MODELS := $(if $(KERAS_HOME),$(KERAS_HOME),$(HOME)/.keras)/models

.PHONY: run test setup setup-dev weights lint bench clean

run: setup weights
	$(BIN)/streamlit run app.py --server.port $(PORT)

test: setup-dev
	$(BIN)/python -m pytest -q

setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt requirements-nodeps.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt -r requirements.txt
	$(PIP) install -q --no-deps -r requirements-nodeps.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt package.json package-lock.json
	$(PIP) install -q -c constraints.txt -r requirements-dev.txt
	npm ci --no-audit --no-fund --loglevel=error
	sh scripts/install-browser.sh
	touch $@

# ImageNet MobileNetV2 weights for training, copied into the Keras cache when ../shared has them.
weights:
	@f=mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5; \
	if [ ! -f "$(KERAS_MODELS)/$$f" ] && [ -f "$(SHARED)/weights/$$f" ]; then \
		mkdir -p "$(KERAS_MODELS)" && cp "$(SHARED)/weights/$$f" "$(KERAS_MODELS)/" && echo "copied $$f into $(KERAS_MODELS)"; fi

lint: setup-dev
	$(BIN)/ruff check facemask app.py ui.py app_pages tests bench tools

bench: setup
	$(BIN)/python bench/latency.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache
