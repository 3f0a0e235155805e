"""Fault suite, security: model files (checkpoints, prior.json) never make cgzoo import a module or unpickle code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from test_training import config, tiny  # noqa: F401 - the tiny dataset fixture

from cgzoo import plugins
from cgzoo.cli import main
from cgzoo.errors import InputError
from cgzoo.models.checkpoint import load_model
from cgzoo.priors import build_prior, load_prior

pytestmark = pytest.mark.faults

EVIL_SOURCE = '''
from pathlib import Path
Path({marker!r}).write_text("module code ran")

from cgzoo.models.pair_mlp import PairMLP
from cgzoo.priors.base import NoPrior


class EvilNet(PairMLP):
    pass


class EvilPrior(NoPrior):
    pass
'''


class PicklePayload:
    """Unpickling this runs ``exec``: what a malicious checkpoint would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pickled code ran')",)


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """An attacker's module ``cgzoo_evil`` importable from the current folder; returns the marker its import writes."""
    marker = tmp_path / "marker.txt"
    (tmp_path / "cgzoo_evil.py").write_text(EVIL_SOURCE.format(marker=str(marker)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins.PLUGINS_ENV, raising=False)
    yield marker
    sys.modules.pop("cgzoo_evil", None)


def evil_checkpoint(path: Path, prior: str = "cgzoo_evil.EvilPrior", network: str | None = "cgzoo_evil.EvilNet") -> Path:
    """A checkpoint whose cgzoo block names the attacker's classes."""
    block = {"format": "cgzoo-model", "version": 1, "type_names": ["A"], "mode": "delta", "energy_scale": 1.0,
             "type_shift": [0.0], "dtype": "float32", "ema": False,
             "prior": json.dumps({"class_path": prior, "init_args": {"type_names": ["A"]}}),
             "network": json.dumps({"name": network, "type_names": ["A"]}) if network else None}
    torch.save({"cgzoo": block, "state_dict": {}}, path)
    return path


def one_line_error(capsys, command: str) -> str:
    """The captured stderr, checked to be exactly one ``cgzoo COMMAND: error:`` line."""
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cgzoo {command}: error: ") and "\n" not in err, err
    return err


def test_positive_control_enabled_plugin_module_is_imported(evil, monkeypatch):
    """With the user's consent the module loads (so the tests below would see its marker if cgzoo imported it)."""
    monkeypatch.setenv(plugins.PLUGINS_ENV, "cgzoo_evil")
    prior = build_prior({"class_path": "cgzoo_evil.EvilPrior", "init_args": {"type_names": ["A"]}})
    assert type(prior).__name__ == "EvilPrior" and evil.exists()


@pytest.mark.parametrize("prior, network", [("cgzoo_evil.EvilPrior", None), ("none", "cgzoo_evil.EvilNet")])
def test_checkpoint_naming_a_module_imports_nothing(evil, tmp_path, prior, network):
    ckpt = evil_checkpoint(tmp_path / "evil.ckpt", prior, network)
    with pytest.raises(InputError) as info:
        load_model(ckpt)
    message = str(info.value)
    assert "evil.ckpt" in message and "CGZOO_PLUGINS=cgzoo_evil" in message and "\n" not in message
    assert not evil.exists() and "cgzoo_evil" not in sys.modules


def test_prior_json_naming_a_module_imports_nothing(evil, tmp_path):
    path = tmp_path / "prior.json"
    path.write_text(json.dumps({"format": "cgzoo-prior", "version": 1,
                                "prior": {"class_path": "cgzoo_evil.EvilPrior", "init_args": {"type_names": ["A"]}}}))
    with pytest.raises(InputError, match=r"prior.json: cannot rebuild the prior: .*CGZOO_PLUGINS=cgzoo_evil"):
        load_prior(path)
    assert not evil.exists() and "cgzoo_evil" not in sys.modules


def test_fit_with_malicious_prior_json_or_checkpoint_runs_nothing(evil, tiny, tmp_path, capsys):  # noqa: F811
    prior = tmp_path / "prior.json"
    prior.write_text(json.dumps({"format": "cgzoo-prior", "version": 1, "prior": {"class_path": "cgzoo_evil.EvilPrior"}}))
    args = config(tiny, "pair_mlp", "delta", tmp_path / "run", max_steps=1)
    assert main(["fit", *args, "--data.prior", str(prior)]) == 2
    assert "CGZOO_PLUGINS=cgzoo_evil" in one_line_error(capsys, "fit")
    ckpt = evil_checkpoint(tmp_path / "evil.ckpt")
    for command in ("fit", "test"):
        assert main([command, *args, "--ckpt_path", str(ckpt)]) == 2
        assert "not an enabled plugin" in one_line_error(capsys, command)
    assert main(["fit", *args, "--model.network", "cgzoo_evil.EvilNet"]) == 2
    assert "CGZOO_PLUGINS=cgzoo_evil" in one_line_error(capsys, "fit")
    assert not evil.exists() and "cgzoo_evil" not in sys.modules


def test_pickle_payload_checkpoint_runs_nothing(tiny, tmp_path, capsys, monkeypatch):  # noqa: F811
    marker = tmp_path / "marker.txt"
    ckpt = tmp_path / "payload.ckpt"
    torch.save({"state_dict": {}, "cgzoo": {"format": "cgzoo-model"}, "x": PicklePayload(marker)}, ckpt)
    torch.load(ckpt, weights_only=False)  # positive control: the payload is live
    assert marker.exists()
    marker.unlink()
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # cgzoo asks for weights_only explicitly
    with pytest.raises(InputError, match="payload.ckpt: not a readable checkpoint"):
        load_model(ckpt)
    args = config(tiny, "pair_mlp", "delta", tmp_path / "run", max_steps=1)
    assert main(["fit", *args, "--ckpt_path", str(ckpt)]) == 2
    assert "payload.ckpt: not a readable checkpoint" in one_line_error(capsys, "fit")
    assert main(["fit", *args, "--ckpt_path", str(ckpt), "--weights_only", "false"]) == 2
    assert "weights_only" in one_line_error(capsys, "fit")
    assert not marker.exists()


def test_plugins_by_entry_point_and_register_plugin(tmp_path, monkeypatch):
    """An installed entry point (a dist-info folder on the path) and register_plugin both enable a module."""
    monkeypatch.delenv(plugins.PLUGINS_ENV, raising=False)
    monkeypatch.setattr(plugins, "_registered", [])
    with pytest.raises(ValueError, match="not an enabled plugin"):
        build_prior({"class_path": "user_prior.GaussianPairBump"}, ["A"])
    dist = tmp_path / "cgzoo_userprior-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cgzoo-userprior\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[cgzoo.priors]\nbump = user_prior:GaussianPairBump\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert type(build_prior({"class_path": "bump"}, ["A"])).__name__ == "GaussianPairBump"
    assert type(build_prior({"class_path": "user_prior.GaussianPairBump"}, ["A"])).__name__ == "GaussianPairBump"
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    with pytest.raises(ValueError, match="not an enabled plugin"):
        build_prior({"class_path": "user_prior.GaussianPairBump"}, ["A"])
    plugins.register_plugin("user_prior")
    assert type(build_prior({"class_path": "user_prior.GaussianPairBump"}, ["A"])).__name__ == "GaussianPairBump"
