"""mmmcl's hooks are default hooks: a config's ``custom_hooks`` adds to them,
``default_hooks.<name>=None`` switches one off, and the export hook refuses
a run that cannot pick a best checkpoint before it trains."""
import copy
import importlib.util
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmmcl.utils import drop_disabled_hooks

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs/lmcl/lmcl_resnet20x2_1xb100-15e_mnist5k.py'
MMENGINE_HOOKS = [
    'RuntimeInfoHook', 'IterTimerHook', 'DistSamplerSeedHook', 'LoggerHook',
    'ParamSchedulerHook', 'CheckpointHook'
]


def tiny(cfg: Config, work_dir: Path) -> Config:
    """ResNet-8 members, 2 epochs of one batch of 20 digits, val on 10."""
    for member in cfg.model.peers.members:
        member.backbone.depth = 8
    cfg.train_dataloader.batch_size = 20
    cfg.train_dataloader.dataset.num_per_class = 2
    cfg.train_dataloader.batch_sampler.num_per_class = 2
    cfg.val_dataloader.dataset.num_per_class = 1
    cfg.param_scheduler[1].T_max = 1
    cfg.train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = work_dir.name
    return cfg


def child_config(tmp_path: Path, body: str) -> Config:
    """A config file that extends the L-MCL config, as a user writes it."""
    path = tmp_path / 'child.py'
    path.write_text(f'_base_ = [{str(CONFIG)!r}]\n{body}')
    return Config.fromfile(path)


def hook_types(runner: Runner) -> list:
    return [type(hook).__name__ for hook in runner.hooks]


def test_custom_hooks_add_to_the_defaults(tmp_path):
    base = Config.fromfile(CONFIG)
    mmmcl_hooks = [
        hook['type'] for name, hook in base.default_hooks.items()
        if name not in ('timer', 'logger', 'param_scheduler', 'checkpoint',
                        'sampler_seed')
    ]
    # whatever the base lists today, at least these
    assert {'RandomStateHook', 'ContrastIndexHook', 'CohortSanityHook',
            'CohortPlotHook'} <= set(mmmcl_hooks)
    plain = Runner.from_cfg(tiny(base, tmp_path / 'plain'))
    assert sorted(hook_types(plain)) == sorted(MMENGINE_HOOKS + mmmcl_hooks)

    child = child_config(
        tmp_path, "custom_hooks = [dict(type='ExportBackbonesHook')]\n"
        'default_hooks = dict(logger=dict(interval=1))\n')
    assert child.default_hooks.logger.interval == 1
    runner = Runner.from_cfg(tiny(child, tmp_path / 'export'))
    types = hook_types(runner)
    assert types[-1] == 'ExportBackbonesHook'  # priority LOWEST
    assert types[:-1] == hook_types(plain)  # every default, same order


def test_none_switches_an_mmmcl_default_off(tmp_path):
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict({'default_hooks.cohort_plot': None,
                         'default_hooks.timer': None})
    # mmengine's Runner asserts on None under a name it does not own
    with pytest.raises(AssertionError):
        Runner.from_cfg(tiny(copy.deepcopy(cfg), tmp_path / 'plain'))
    assert drop_disabled_hooks(cfg) == ['cohort_plot']
    assert 'cohort_plot' not in cfg.default_hooks
    assert cfg.default_hooks.timer is None  # left to mmengine: removes it
    types = hook_types(Runner.from_cfg(tiny(cfg, tmp_path / 'off')))
    assert 'CohortPlotHook' not in types and 'IterTimerHook' not in types
    assert 'RandomStateHook' in types


def test_train_tool_applies_none(tmp_path):
    spec = importlib.util.spec_from_file_location('mmmcl_train_tool',
                                                  REPO / 'tools/train.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = tool.parse_args(
        [str(CONFIG), '--cfg-options', 'default_hooks.cohort_sanity=None'])
    cfg = tool.merge_args(Config.fromfile(CONFIG), args)
    assert 'cohort_sanity' not in cfg.default_hooks
    assert 'random_state' in cfg.default_hooks


class CountIters(Hook):

    def __init__(self) -> None:
        self.iters = 0

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.iters += 1


@pytest.mark.parametrize('broken,field', [
    (dict(val_dataloader=None, val_cfg=None, val_evaluator=None),
     '`val_dataloader`, `val_evaluator` and `val_cfg`'),
    (dict(train_cfg=dict(val_begin=3)),
     '`train_cfg.val_begin` (3) is after the end of training (2)'),
    (dict(default_hooks=dict(checkpoint=dict(save_best=None))),
     '`default_hooks.checkpoint.save_best`'),
], ids=['no_val_split', 'val_after_the_end', 'no_save_best'])
def test_export_hook_refuses_before_the_first_iteration(
        tmp_path, broken, field):
    cfg = tiny(Config.fromfile(CONFIG), tmp_path / 'work')
    cfg.custom_hooks = [dict(type='ExportBackbonesHook')]
    cfg.merge_from_dict(broken)
    runner = Runner.from_cfg(cfg)
    counter = CountIters()
    runner.register_hook(counter)
    with pytest.raises(RuntimeError) as e:
        runner.train()
    assert field in str(e.value)
    assert "ExportBackbonesHook(source='last')" in str(e.value)
    assert counter.iters == 0 and runner.iter == 0
