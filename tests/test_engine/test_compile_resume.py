"""Exact resume with ``compile=True``: an L-MCL run whose ``train_step``
the Runner compiles, cut and resumed, ends where the same compiled run
straight through ends (the meta step runs eagerly inside the compiled
step). Compiling takes about a minute a run on a CPU: slow set."""
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from test_resume import (assert_same_optimizers,  # noqa: I100
                         straight_and_resumed, tiny_cfg, train)

pytestmark = pytest.mark.slow

STOP, END = 2, 4  # iterations: cut after the first meta step's iteration


def train_compiled(cfg, stop=None):
    """``train`` in a fresh Dynamo, as in a new process: its caches, shared
    by every model compiled in this one, would otherwise reach the
    recompile limit and leave a later run eager."""
    torch._dynamo.reset()
    counters.clear()
    return train(cfg, stop)


def compiled_cfg(work_dir: Path, by_epoch: bool = False):
    """``test_resume``'s iteration-based tiny L-MCL run, 4 iterations (the
    meta step at 0 and 2, the lr changing at every step), compiled."""
    cfg = tiny_cfg(work_dir, by_epoch=by_epoch)
    cfg.train_cfg.max_iters = END
    cfg.compile = True
    return cfg


def test_compiled_resume_is_exact(tmp_path):
    runs = straight_and_resumed(tmp_path, False, STOP, END,
                                make_cfg=compiled_cfg, run=train_compiled)
    # the Runner compiled the step it ran (MMEngine sets the compiled bound
    # method on the model), and Dynamo compiled graphs in the resumed run
    for runner in (runs['straight'], runs['resumed']):
        assert 'train_step' in vars(runner.model)
    assert counters['stats']['unique_graphs'] > 0

    a, b, cut = runs['a'], runs['b'], runs['cut']
    assert a['state_dict'].keys() == b['state_dict'].keys()
    moved = set()
    for key, value in a['state_dict'].items():
        # peers, teachers, terms, BN statistics and the meta-network
        assert torch.equal(value, b['state_dict'][key]), key
        if not torch.equal(value, cut['state_dict'][key]):
            moved.add(key.split('.')[0])
    # both parts of the resumed run trained: theta, and phi (the meta step
    # at iteration 2, after the cut)
    assert {'peers', 'meta_net'} <= moved
    assert all(a['optimizer'][name]['state'] for name in ('cohort', 'meta'))
    assert_same_optimizers(a, b)
