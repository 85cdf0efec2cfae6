# Sample Scout — the two entry points are `make run` and `make test`.
# Both install what they need: Debian packages (apt-get when root, otherwise the
# exact command is printed), a virtual environment in .venv, and the project.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

# Debian packages the app needs at run time (audio I/O, decoding, Qt's xcb plugin).
# g++ and the Python headers build hnswlib, which PyPI ships as source only.
RUN_PACKAGES := libportaudio2 libsndfile1 jackd2 g++ python3-dev python3-venv libatomic1 \
	libegl1 libgl1 libglib2.0-0 libfontconfig1 libfreetype6 libdbus-1-3 \
	libxkbcommon0 libxkbcommon-x11-0 libx11-xcb1 libxcb1 libxcb-icccm4 libxcb-keysyms1 \
	libxcb-cursor0 libxcb-image0 libxcb-randr0 libxcb-render0 libxcb-render-util0 \
	libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1
# ...and what the tests exercise: real samples, a real VST3, a virtual screen.
TEST_PACKAGES := $(RUN_PACKAGES) zam-plugins hydrogen-drumkits hydrogen-drumkits-effects \
	sonic-pi-samples lmms-common xvfb

# Reproducing the trained encoder (models/scout_int8.onnx): Debian audio packages for the
# training data and a separate venv with torch (the app itself never imports torch).
TRAIN_PACKAGES := fluidsynth fluid-soundfont-gm avldrums.lv2-soundfont csound-soundfont opl3-soundfont hedgewars-data openarena-data freedoom \
	wesnoth-1.16-music frozen-bubble-data
TRAIN_VENV := .venv-train
TRAIN_WORK ?= $(HOME)/.cache/sample-scout/train

.PHONY: run test bench system-run system-test venv clean-venv train-model export-aisfx export-musicnn

# The project's modules are compiled ahead (compileall skips the ones already current): where
# Python may not write bytecode as it imports (PYTHONDONTWRITEBYTECODE), every start of the
# window, and every worker process a scan or a test starts, would compile them again
# (about 0.3 s each).
run: system-run $(VENV)/.installed $(VENV)/.room-fit-compiled
	@$(PY) -m compileall -q app engine ui models
	$(VENV)/bin/samplescout $(ARGS)

test: system-test $(VENV)/.installed $(VENV)/.room-fit-compiled
	@$(PY) -m compileall -q app engine ui models
	$(PY) -m pytest -q -rs -p no:cacheprovider $(PYTEST_ARGS)

system-run:
	@PACKAGES="$(RUN_PACKAGES)" sh .ci/system-packages.sh

system-test:
	@PACKAGES="$(TEST_PACKAGES)" sh .ci/system-packages.sh

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
	  echo "error: could not create $(VENV). On Debian: apt-get install python3-venv"; exit 1; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# The re-ranker's room fit is compiled by numba (models/room_fit_kernel.py) into a cache
# beside it: done here once, not in the first search of a window (about 2 s).
$(VENV)/.room-fit-compiled: models/room_fit_kernel.py $(VENV)/.installed
	@$(PY) -c 'from models import room_fit; room_fit.warm_up()'
	@touch $@

train-model:
	@PACKAGES="$(TRAIN_PACKAGES)" sh .ci/system-packages.sh
	@test -x $(TRAIN_VENV)/bin/python || $(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install -q torch==2.13.0 onnx onnxruntime numpy scipy soundfile soxr \
		pedalboard==0.9.26 pyroomacoustics==0.10.1
	nice -n 10 $(TRAIN_VENV)/bin/python -m models.train.all --work-dir $(TRAIN_WORK)

# Re-export the aisfx teacher (models/aisfx_int8.onnx) from its PyPI package.
export-aisfx:
	@test -x $(TRAIN_VENV)/bin/python || $(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install -q torch==2.13.0 onnx onnxruntime numpy soundfile soxr tqdm
	$(TRAIN_VENV)/bin/pip install -q --no-deps aisfx==0.1.2
	@PACKAGES="frozen-bubble-data" sh .ci/system-packages.sh
	$(TRAIN_VENV)/bin/python models/export_aisfx.py --out models/

# Re-export musicnn's Million Song Dataset tagger (models/musicnn_msd_int8.onnx) from its PyPI
# package; tensorflow lives in this venv only (the app never imports it).
MUSICNN_VENV := .venv-musicnn
export-musicnn:
	@test -x $(MUSICNN_VENV)/bin/python || $(PYTHON) -m venv $(MUSICNN_VENV)
	$(MUSICNN_VENV)/bin/pip install -q tensorflow-cpu==2.15.1 tf2onnx==1.16.1 librosa==0.10.2 \
		onnxruntime soundfile soxr
	$(MUSICNN_VENV)/bin/pip install -q --no-deps musicnn==0.1.0
	@PACKAGES="sonic-pi-samples lmms-common" sh .ci/system-packages.sh
	$(MUSICNN_VENV)/bin/python models/export_musicnn.py --out models/

clean-venv:
	rm -rf $(VENV)
