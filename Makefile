# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
RAY_STAMP := $(VENV)/.installed-ray-$(shell sha1sum requirements-ray.txt | cut -c1-12)
DATA ?= $(if $(BD_DATA_DIR),$(BD_DATA_DIR),$(wildcard ../shared/datasets))

.PHONY: run lint test test-all bench bench-speed bench-users bench-data bench-curation reproduce clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# Ray, for the Ray job backend's tests (the app itself does not need it).
$(RAY_STAMP): $(STAMP) requirements-ray.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-ray.txt
	rm -f $(VENV)/.installed-ray-* && touch $(RAY_STAMP)

# The app, on http://localhost:8501 (bound to localhost by .streamlit/config.toml).
run: $(STAMP)
	$(PY) -m streamlit run app.py

# ruff first (ruff.toml): a style violation fails the suite, as in CI.
lint: $(STAMP)
	$(PY) -m ruff check .

test: lint $(RAY_STAMP)
	$(PY) -m pytest -m "not slow" -q

test-all: lint $(RAY_STAMP)
	$(PY) -m pytest -q

# Speed only, under 5 minutes on a 2-core CPU: the classroom figures (docs/performance.md, "The
# classroom"). `make bench-speed` runs the earlier per-step figures; Table 1 is `make reproduce`.
bench: $(STAMP)
	BD_DATA_DIR=$(DATA) $(PY) bench/run_all.py --suite classroom --out 'docs/bench-classroom-{device}.json'

bench-speed: $(STAMP)
	BD_DATA_DIR=$(DATA) $(PY) bench/run_all.py --suite speed --out 'docs/bench-{device}.json'

# 20 sessions at once while a run trains, and the server's memory over 500 sessions (about 10 min
# on a 2-core CPU): docs/reliability.md, "Many users".
bench-users: $(STAMP)
	$(PY) bench/run_all.py --suite users --out 'docs/bench-users-{device}.json'

# The data path on stand-in image collections written to /tmp/bd-data-bench (about 15 min and
# 12 GB of disk on a 2-core CPU): preparation, memory while streaming, streaming vs in memory,
# uploads (docs/performance.md, "The data path").
bench-data: $(STAMP)
	BD_DATA_DIR=$(DATA) $(PY) bench/data_path.py --out 'docs/bench-data-{device}.json'

# Curated vs random vs full transfer sets, 3 seeds of Table 1's MLP -> MLP and CNN -> MLP rows
# (about 30 min on a 2-core CPU): docs/curation.md.
bench-curation: $(STAMP)
	BD_DATA_DIR=$(DATA) $(PY) bench/curation_claim.py --out docs/bench-curation-cpu.json

# Table 1 beside the paper, with its wall time (about 1.5 h on a 2-core fp32 CPU: docs/results.md).
reproduce: $(STAMP)
	BD_DATA_DIR=$(DATA) $(PY) -m bdcore reproduce table1

clean:
	rm -rf $(VENV) .pytest_cache
