"""Property-based fuzzing of the input readers: any prior spec, mapping (YAML or VOTCA XML) or study file gives a
valid result or a one-line :class:`~cgzoo.errors.CGZooError`, never another exception (issue 14)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgzoo.errors import CGZooError
from cgzoo.fitting.spec import load_spec
from cgzoo.mapping import load_mapping
from cgzoo.study import load_study

pytestmark = pytest.mark.faults
ROOT = Path(__file__).parents[1]
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["force_matching", "least_squares", "boltzmann_inversion",
                                                          "lennard_jones", "mass", "geometry", "1:HEX:C1", "table"]))
KEYS = st.one_of(st.text(max_size=10), st.sampled_from(["terms", "split", "fit", "gap", "cutoff", "pair_spacing",
                                                        "init_args", "molecules", "beads", "atoms", "weights", "name",
                                                        "grid", "presets", "defaults", "md", "seeds"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                      max_leaves=12)


def mutate(doc: Any, data: st.DataObject) -> Any:
    """``doc`` with one random node replaced, deleted, or given an extra key, chosen by ``data``."""
    if isinstance(doc, dict) and doc:
        key = data.draw(st.sampled_from(sorted(doc, key=str)))
        action = data.draw(st.sampled_from(["replace", "delete", "add", "descend"]))
        if action == "replace":
            return {**doc, key: data.draw(VALUES)}
        if action == "delete":
            return {k: v for k, v in doc.items() if k != key}
        if action == "add":
            return {**doc, data.draw(KEYS): data.draw(VALUES)}
        return {**doc, key: mutate(doc[key], data)}
    if isinstance(doc, list) and doc:
        index = data.draw(st.integers(0, len(doc) - 1))
        return doc[:index] + [mutate(doc[index], data)] + doc[index + 1:]
    return data.draw(VALUES)


def documents(examples: list[Path]) -> st.SearchStrategy[Callable[[st.DataObject], Any]]:
    """YAML text for fuzzing: random documents, 1–3 mutations of a real example, or arbitrary text."""
    originals = [yaml.safe_load(p.read_text()) for p in examples]

    def mutated(data: st.DataObject) -> str:
        doc = data.draw(st.sampled_from(originals))
        for _ in range(data.draw(st.integers(1, 3))):
            doc = mutate(doc, data)
        return yaml.safe_dump(doc, allow_unicode=True)

    return st.sampled_from([mutated, mutated, lambda data: yaml.safe_dump(data.draw(VALUES)),
                            lambda data: data.draw(st.text(max_size=80))])


def check_reader(read: Callable[[Path], Any], text: str, suffix: str) -> None:
    """``read`` of a file holding ``text`` either returns or raises a one-line :class:`CGZooError`."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_text(text)
        try:
            read(path)
        except CGZooError as exc:
            assert "\n" not in str(exc), str(exc)


@FUZZ
@given(st.data(), documents(sorted((ROOT / "datasets" / "priors").glob("*.yaml"))))
def test_prior_spec_reader_never_crashes(data, make):
    check_reader(load_spec, make(data), ".yaml")


@FUZZ
@given(st.data(), documents(sorted((ROOT / "datasets" / "mappings").glob("*.yaml"))))
def test_mapping_reader_never_crashes(data, make):
    check_reader(load_mapping, make(data), ".yaml")


VOTCA = """<cg_molecule><name>HEX</name><ident>HEX</ident><topology><cg_beads>
<cg_bead><name>A</name><type>E</type><mapping>END</mapping><beads>1:HEX:C1 1:HEX:C2</beads></cg_bead>
<cg_bead><name>B</name><type>E</type><mapping>END</mapping><beads>1:HEX:C3 1:HEX:C4</beads></cg_bead>
</cg_beads><cg_bonded><bond><name>b</name><beads>A B</beads></bond></cg_bonded></topology>
<maps><map><name>END</name><weights>15.035 14.027</weights></map></maps></cg_molecule>"""
TOKENS = ["A", "B", "C", "E", "END", "1:HEX:C1", "2:HEX:C1", "0:X:Y", "-1", "nan", "inf", "0", " ", "", "<d>1</d>",
          "</beads>", "<angle><beads>A B</beads></angle>"]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(TOKENS + ["HEX", "15.035", "14.027", "C1", "C3"]), st.sampled_from(TOKENS)),
                min_size=1, max_size=3))
def test_votca_reader_never_crashes(swaps):
    text = VOTCA
    for old, new in swaps:
        text = text.replace(old, new, 1)
    check_reader(load_mapping, text, ".xml")


@FUZZ
@given(st.data(), documents([ROOT / "experiments" / "delta_study" / "study.yaml"]))
def test_study_reader_never_crashes(data, make):
    check_reader(lambda path: load_study(path, "cpu"), make(data), ".yaml")
