# multihowto: `make dataset` and `make test` set everything up on their own.
PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
REGION      ?= local
# Debian packages that carry the sample site's real material (CLDR names, Noto emoji);
# chromium (with a CJK fallback font) runs mhowto browse's tests in a headless browser.
APT_PACKAGES := unicode-cldr-core fonts-noto-color-emoji chromium fonts-droid-fallback
STAMP       := $(VENV)/.installed

.PHONY: setup system-deps site dataset inspect browse doctor test test-fast lint lock fuzz soak bench bench-train pretrain eval clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# Pinned first: a plain `torch` would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	# Every version from the lock file, so a clean clone gets what was measured.
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# Rewrite the lock file from the current environment (after changing pyproject.toml).
lock: setup
	@{ echo "# Every package version a clean install gets (make installs with -c constraints.txt)."; \
	   echo "# Regenerate after changing pyproject.toml: make lock"; \
	   $(BIN)/python -m pip freeze --exclude-editable | grep -v '^multihowto'; } > constraints.txt

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "[setup] installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "[setup] missing Debian packages:$$missing"; \
	    echo "        run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

site: setup
	$(BIN)/mhowto build-sample --site-dir build/site

dataset: setup
	$(BIN)/mhowto dataset --region $(REGION)

inspect: setup
	$(BIN)/mhowto inspect data/$(REGION)

# What yt-dlp finds on this node for the region (JS runtime, ffmpeg, cookies, proxy).
doctor: setup
	$(BIN)/mhowto doctor --region $(REGION)

# Look at the built dataset in a browser: a read-only app on 127.0.0.1 (URL printed).
browse: setup
	$(BIN)/mhowto browse data/$(REGION)

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check pipeline operators schemas sample_site trainer tests bench

clean:
	rm -rf build data runs .pytest_cache

# The property suite with 20,000 examples per property (make test runs 150).
fuzz: setup
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest -q -p no:randomly tests/operators/test_caption_properties.py

# Benchmarks: ratios against limits measured in the same run; writes bench/results.json.
bench: setup
	$(BIN)/python bench/run.py
	$(BIN)/python bench/train.py

# The seeded soak (not part of `make test`): 20 runs of the sample site under random
# faults and driver/Ray worker kills, each checked against its truth; SOAK_ARGS="--seed 1".
soak: setup
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

# The trainer alone: model FLOP/s against a matmul ceiling measured in the same run (and
# the datasheet bf16 peak on a known GPU); writes bench/train_results.json.
bench-train: setup
	$(BIN)/python bench/train.py

# The recipe: build its dataset, pre-train English-only vs all nine languages (3 seeds),
# fine-tune on English, then query the held-out split in every language.
pretrain: setup
	$(BIN)/mhowto recipe pretrain

eval: setup
	$(BIN)/mhowto recipe eval
