"""Exact resume with ``compile=True``: an L-MCL run whose ``train_step``
the Runner compiles, cut and resumed, ends where the same compiled run
straight through ends (the meta step runs eagerly inside the compiled
step). Compiling takes about a minute a run on a CPU: slow set."""
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from mmmcl.utils import load_from_local
from test_resume import assert_same_optimizers, tiny_cfg, train  # noqa: I100

pytestmark = pytest.mark.slow

STOP, END = 2, 4  # iterations: cut after the first meta step's iteration


def train_compiled(cfg, stop=None):
    """``train`` in a fresh Dynamo, as in a new process: its caches, shared
    by every model compiled in this one, would otherwise reach the
    recompile limit and leave a later run eager."""
    torch._dynamo.reset()
    counters.clear()
    return train(cfg, stop)


def compiled_cfg(work_dir: Path):
    """``test_resume``'s iteration-based tiny L-MCL run, 4 iterations (the
    meta step at 0 and 2, the lr changing at every step), compiled."""
    cfg = tiny_cfg(work_dir, by_epoch=False)
    cfg.train_cfg.max_iters = END
    cfg.compile = True
    return cfg


def test_compiled_resume_is_exact(tmp_path):
    straight = train_compiled(compiled_cfg(tmp_path / 'straight'))
    crashed = compiled_cfg(tmp_path / 'crashed')
    train_compiled(crashed, stop=STOP)
    assert not (tmp_path / 'crashed' / f'iter_{END}.pth').exists()
    cut = load_from_local(str(tmp_path / 'crashed' / f'iter_{STOP}.pth'))
    crashed.resume = True
    crashed.experiment_name += '_resumed'
    resumed = train_compiled(crashed)
    # the Runner compiled the step it ran (MMEngine sets the compiled bound
    # method on the model), and Dynamo compiled graphs in the resumed run
    for runner in (straight, resumed):
        assert 'train_step' in vars(runner.model)
    assert counters['stats']['unique_graphs'] > 0
    assert resumed.iter == straight.iter == END

    a = load_from_local(str(tmp_path / 'straight' / f'iter_{END}.pth'))
    b = load_from_local(str(tmp_path / 'crashed' / f'iter_{END}.pth'))
    assert a['state_dict'].keys() == b['state_dict'].keys()
    moved = set()
    for key, value in a['state_dict'].items():
        # members, branches, BN statistics and the meta-network
        assert torch.equal(value, b['state_dict'][key]), key
        if not torch.equal(value, cut['state_dict'][key]):
            moved.add(key.split('.')[0])
    # both parts of the resumed run trained: theta, and phi (the meta step
    # at iteration 2, after the cut)
    assert {'peers', 'meta_net'} <= moved
    assert all(a['optimizer'][name]['state'] for name in ('cohort', 'meta'))
    assert_same_optimizers(a, b)
