"""Every recipe in configs/ is a valid ``chainrule train --config`` file: its estimator accepts every parameter
(``--dry-run`` checks them all and loads nothing; ``--data digits`` stands in for the archive the recipe names, so
the check does not depend on where the CIFAR-10 archive lies)."""

from pathlib import Path

import pytest

from chainrule.cli import main

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.toml"))


def test_the_recipes_are_found():
    assert {p.name for p in CONFIGS} >= {"cifar10-cnn.toml", "cifar10-cnn-fp32.toml", "cifar10-mlp-zca.toml"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_each_recipe_passes_the_dry_run(path, capsys):
    assert main(["train", "--config", str(path), "--data", "digits", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert 'data = "digits"' in out

