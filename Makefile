# The two commands of the README. Both create .venv and install everything they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: test lint format install clean demo demo-world-model demo-policy docs tables

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,docs,sweeps]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# the test suite runs the code of README.md and docs/ too (pytest-markdown-docs), then the docs site must build
# without a warning (broken links, API references)
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile
	$(BIN)/mkdocs build --strict --quiet --site-dir .site-check && rm -rf .site-check

# the documentation site (MkDocs + Material, API reference from the docstrings) in site/
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

# every results table of README.md and docs/, rewritten from its results file by the command its marker names
tables: $(STAMP)
	$(BIN)/python scripts/write_tables.py

# MNIST World data of the CPU recipe (40x40 world, 26x26 window), FloWM (dirac init) and a ConvLSTM baseline trained
# briefly on 20 context + 20 predicted frames, evaluated 100 frames past the context.
DEMO_WM := runs/demo/world_model
DEMO_WM_TRAIN := --steps 150 --context 20 --predict 20 --no-random-start --data $(DEMO_WM)/data/train \
	--val-data $(DEMO_WM)/data/validation --val-every 50
demo-world-model: $(STAMP)
	$(BIN)/python scripts/make_dataset.py --world mnist --preset cpu --split train --num-sequences 500 --out $(DEMO_WM)/data/train
	$(BIN)/python scripts/make_dataset.py --world mnist --preset cpu --split validation --num-sequences 16 --sequence-length 120 --out $(DEMO_WM)/data/validation
	$(BIN)/python scripts/train_world_model.py --model flowm --recurrent-init dirac $(DEMO_WM_TRAIN) --out $(DEMO_WM)/flowm
	$(BIN)/python scripts/train_world_model.py --model convlstm $(DEMO_WM_TRAIN) --out $(DEMO_WM)/convlstm
	$(BIN)/python scripts/evaluate_world_model.py --checkpoints $(DEMO_WM)/flowm $(DEMO_WM)/convlstm \
	  --data $(DEMO_WM)/data/validation --context 20 --horizon 100 --report-steps 20 100 --num-sequences 16 \
	  --references mean_frame --out $(DEMO_WM)/eval
	@echo "world-model demo: $(DEMO_WM)/eval/horizon.png, $(DEMO_WM)/eval/rollout.gif, $(DEMO_WM)/eval/metrics.json"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site

# Short SET training (PPO over 32 batched simulations, ~200k steps, a few minutes on 2 cores) on one 3D body + an
# evaluation rollout with video: runs/demo/set_hopper_5_full/
demo: demo-policy demo-world-model

demo-policy: $(STAMP)
	$(BIN)/python scripts/train_policy.py --env hopper_5_full --policy set --num-envs 32 --steps 200000 \
		--eval-every 50000 --eval-episodes 2 --checkpoint-every 0 --run-dir runs/demo --name set_hopper_5_full
	$(BIN)/python scripts/evaluate_policy.py --checkpoint runs/demo/set_hopper_5_full/model.zip \
		--headings 2 --targets 2 --max-steps 300
