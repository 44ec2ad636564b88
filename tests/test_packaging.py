"""The built-in runners install under a name no other project uses (issue 14): the import name is
``onnx_netadapt_runners``; a bare ``runners`` package is not ours."""

from __future__ import annotations

import configparser
import importlib
import importlib.util
from pathlib import Path

import onnx_netadapt_runners

REPO = Path(__file__).resolve().parents[1]


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return config


def test_import_runners_is_not_our_package() -> None:
    spec = importlib.util.find_spec("runners")
    ours = Path(onnx_netadapt_runners.__file__).resolve().parent
    assert spec is None or Path(spec.origin or "").resolve().parent != ours
    assert not (REPO / "runners").exists()


def test_installed_packages_and_entry_points_use_the_unambiguous_name() -> None:
    config = _setup_cfg()
    included = config["options.packages.find"]["include"].split()
    assert "runners" not in included and "onnx_netadapt_runners" in included
    entry_points = config["options.entry_points"]["onnx_netadapt.runners"].split("\n")
    targets = [line.split("=")[1].strip() for line in entry_points if "=" in line]
    assert len(targets) >= 4
    for target in targets:
        module, _, attribute = target.partition(":")
        assert module.split(".")[0] == "onnx_netadapt_runners", target
        assert hasattr(importlib.import_module(module), attribute), target
