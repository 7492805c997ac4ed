"""``import mmmcl`` and a cohort's whole training path leave mmdet, mmseg,
``mmcv.ops`` and pycocotools unimported (a machine with mmcv built without
ops, or without the detection stack, trains cohorts; a GPU machine without
pycocotools once failed in ``mmmcl.datasets``).

The subprocess stands for such a machine: every import of the three is
blocked, and mmengine's ``mmcv_full_available()`` says False, as it does
without ``mmcv._ext`` (with ops, mmengine's Runner itself imports
``mmcv.ops`` for SyncBN and DCN checks). Two guarded imports are then
still tried, by mmpretrain 1.2.0's models, not by mmmcl:
``mmpretrain/models/utils/res_layer_extra_norm.py`` tries mmdet, and mmcv's
``mmcv/cnn/bricks/transformer.py`` tries ``mmcv.ops``; both go on without.
(Where mmdet is installed, ``import mmmcl.models`` therefore loads mmdet
through mmpretrain; ``import mmmcl`` alone loads none of the three.) The
test checks that no file of mmmcl tries any of them.
"""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / 'configs/lmcl/lmcl_resnet20x2_1xb100-15e_mnist5k.py'

SCRIPT = r'''
import os
import sys
import traceback

BLOCKED = ('mmdet', 'mmseg', 'mmcv.ops', 'pycocotools')
TRIED = []  # (module, file that imports it)


def blocked(name):
    return any(name == b or name.startswith(b + '.') for b in BLOCKED)


class Block:
    """Any import of a blocked module fails; the attempt is recorded."""

    def find_spec(self, name, path=None, target=None):
        if blocked(name):
            files = [f.filename for f in traceback.extract_stack()
                     if 'importlib' not in f.filename
                     and not f.filename.startswith('<')]
            TRIED.append((name, files[-1]))
            raise ImportError(f'blocked import of {name}')
        return None


sys.meta_path.insert(0, Block())

# mmcv without ops: no mmcv._ext, so mmengine's check says False
import mmengine.model.utils  # noqa: E402
import mmengine.optim.optimizer.default_constructor as constructor  # noqa

mmengine.model.utils.mmcv_full_available = lambda: False
constructor.mmcv_full_available = lambda: False

import mmmcl  # noqa: E402
import mmmcl.apis, mmmcl.datasets, mmmcl.engine, mmmcl.evaluation  # noqa
import mmmcl.models, mmmcl.utils, mmmcl.visualization  # noqa
from mmmcl.utils import register_all_modules  # noqa: E402

register_all_modules()

from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

cfg = Config.fromfile(sys.argv[1])
for member in cfg.model.peers.members:
    member.backbone.depth = 8
cfg.model.meta.interval = 1  # the meta step runs too
cfg.train_dataloader.batch_size = 20
cfg.train_dataloader.dataset.num_per_class = 2
cfg.train_dataloader.batch_sampler.num_per_class = 2
cfg.param_scheduler[1].T_max = 1
cfg.train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)
cfg.val_dataloader.dataset.num_per_class = 1
cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
cfg.default_hooks.pop('cohort_plot')
cfg.custom_hooks = [dict(type='ExportBackbonesHook', source='last')]
cfg.work_dir = sys.argv[2]
runner = Runner.from_cfg(cfg)
runner.train()
assert runner.iter == 2, runner.iter
found = sorted(m for m in sys.modules if blocked(m))
assert not found, f'imported: {found}'
package = os.path.dirname(os.path.abspath(mmmcl.__file__))
mine = [t for t in TRIED if os.path.abspath(t[1]).startswith(package)]
assert not mine, f'mmmcl tried to import: {mine}'
print('lazy imports OK; third-party attempts:', TRIED)
'''


def test_import_mmmcl_loads_none_of_them():
    """Plain ``import mmmcl`` (registries, version check, safe loading),
    nothing blocked."""
    code = ('import sys, mmmcl; print(sorted(m for m in sys.modules if '
            'm.split(".")[0] in ("mmdet", "mmseg") or '
            'm.startswith("mmcv.ops")))')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300, env=dict(
                              os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip() == '[]'


def test_cohort_trains_without_mmdet_mmseg_or_mmcv_ops(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, '-c', SCRIPT,
         str(CONFIG), str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert 'lazy imports OK' in proc.stdout
    assert (tmp_path / 'backbones' / 'member1.pth').is_file()
