"""Every config builds the model it built when the fixture was recorded.

``tests/data/config_fixtures.json`` holds, for every training config, the
trainable, total and buffer element counts of its model and, for the
classification configs, its losses on a fixed batch from a fixed seed
(:func:`mmmcl.testing.config_fixtures.measure_config`). Counts must match
exactly, losses to a relative 1e-4 (the fixture was recorded before the two
distillers merged into one: its loss keys are mapped to today's,
:func:`~mmmcl.models.distillers.upgrade_losses`) (CPU float results differ between
processor types; 1e-8 absolute for the near-zero KD terms of a first
step). Regenerate it only where a change of a model is meant::

    python tools/misc/make_config_fixtures.py
"""
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmmcl.models.distillers import upgrade_losses
from mmmcl.testing.config_fixtures import config_files, measure_config
from mmmcl.utils import register_all_modules

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / 'configs'
FIXTURES = json.loads((REPO / 'tests/data/config_fixtures.json').read_text())
CONFIGS = [p for group in config_files(ROOT).values() for p in group]


def rel(config: Path) -> str:
    return config.relative_to(ROOT).as_posix()


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """One intra-op thread, as the fixture was recorded; mmmcl's modules
    registered."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    register_all_modules()
    yield
    torch.set_num_threads(threads)


def test_every_config_has_a_fixture():
    assert len(CONFIGS) > 70
    assert sorted(map(rel, CONFIGS)) == sorted(FIXTURES)


@pytest.mark.parametrize('config', CONFIGS, ids=rel)
def test_config_builds_its_fixture(config):
    expected = FIXTURES[rel(config)]
    found = measure_config(config)
    counts = ('trainable', 'params', 'buffers')
    assert {k: found[k] for k in counts} == {k: expected[k] for k in counts}
    assert ('losses' in found) == ('losses' in expected)
    if 'losses' in expected:
        # recorded before the two distillers merged: their loss keys
        distill = Config.fromfile(config).model.get('distill')
        losses = upgrade_losses(expected['losses'],
                                distill[0]['teacher'] if distill else None)
        assert found['losses'].keys() == losses.keys()
        assert found['losses'] == pytest.approx(losses, rel=1e-4, abs=1e-8)
