import os.path as osp

from mmengine.dist import master_only
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmmcl.apis.export import load_cohort_checkpoint, save_backbone
from mmmcl.apis.export_peers import num_peers
from mmmcl.registry import HOOKS

SOURCES = ('best', 'last')


@HOOKS.register_module()
class ExportBackbonesHook(Hook):
    """Exports every member's backbone at the end of training.

    Writes ``{work_dir}/backbones/member{i}.pth`` for each member i, in the
    format of ``tools/model_converters/export_backbone.py`` (checked against
    the member's backbone config, loadable by mmdet / mmseg with
    ``init_cfg=dict(type='Pretrained', checkpoint=...)``). Only rank 0
    writes. Switch it on with ``custom_hooks = [dict(type=
    'ExportBackbonesHook')]``: mmmcl's own hooks are ``default_hooks``
    (``configs/_base_/default_runtime.py``), which that list leaves in place.

    With ``source='best'`` a run that could not pick a best checkpoint (no
    validation, ``train_cfg.val_begin`` after the end, no ``save_best``)
    is refused in ``before_train``, before the first iteration.

    Args:
        source (str): ``'best'``: the best checkpoint of the
            ``CheckpointHook`` (``default_hooks.checkpoint.save_best``; with
            several keys, the first); ``'last'``: the model's weights at the
            end of training. Defaults to ``'best'``.
    """

    priority = 'LOWEST'

    def __init__(self, source: str = 'best') -> None:
        if source not in SOURCES:
            raise ValueError(f'`ExportBackbonesHook.source` must be one of '
                             f'{SOURCES}, got {source!r}.')
        self.source = source

    def before_train(self, runner) -> None:
        """Refuse to start a run that could not export the best weights."""
        if self.source == 'best':
            # fail now, before the first iteration, not after training
            self._checkpoint_hook(runner)
            self._check_validation(runner)

    @staticmethod
    def _check_validation(runner) -> None:
        """Raise unless the run validates at least once."""
        fix = ("or use ExportBackbonesHook(source='last') to export the "
               'final weights.')
        if runner.val_loop is None:
            raise RuntimeError(
                "ExportBackbonesHook(source='best') exports the checkpoint "
                'that scores best on the val split, but this run has no '
                'validation: set `val_dataloader`, `val_evaluator` and '
                '`val_cfg` (tools/train.py --no-validate removes them), '
                + fix)
        loop = runner.train_loop
        if isinstance(loop, EpochBasedTrainLoop):
            begin, last = loop.val_begin, loop.max_epochs
        elif isinstance(loop, IterBasedTrainLoop):
            begin, last = loop.val_begin, loop.max_iters
        else:  # a custom loop: its own rules
            return
        if begin > last:
            raise RuntimeError(
                "ExportBackbonesHook(source='best') needs a validation, but "
                f'`train_cfg.val_begin` ({begin}) is after the end of '
                f'training ({last}): lower it, ' + fix)

    @master_only
    def after_train(self, runner) -> None:
        if self.source == 'best':
            checkpoint = self.best_checkpoint(runner)
            state_dict, cfg, text = load_cohort_checkpoint(checkpoint)
        else:
            model = runner.model.module if is_model_wrapper(
                runner.model) else runner.model
            checkpoint, state_dict = None, model.state_dict()
            cfg, text = runner.cfg, runner.cfg.pretty_text
        logger = MMLogger.get_current_instance()
        for member in range(num_peers(cfg)):
            out = osp.join(runner.work_dir, 'backbones', f'member{member}.pth')
            summary = save_backbone(
                state_dict, cfg, member, out, config_text=text,
                source_checkpoint=checkpoint)
            logger.info(
                f'Exported the backbone of member {member} '
                f'({summary["arch"]}, {summary["num_params"]:,} parameters) '
                f'of the {self.source} weights to {out}')

    @staticmethod
    def _checkpoint_hook(runner) -> CheckpointHook:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and hook.save_best:
                return hook
        raise RuntimeError(
            "ExportBackbonesHook(source='best') exports the best checkpoint, "
            'but no CheckpointHook saves one: set '
            "`default_hooks.checkpoint.save_best` (e.g. 'ensemble/accuracy/"
            "top1'), or use ExportBackbonesHook(source='last').")

    def best_checkpoint(self, runner) -> str:
        """Path of the best checkpoint the ``CheckpointHook`` saved."""
        hook = self._checkpoint_hook(runner)
        key = hook.key_indicators[0]
        if len(hook.key_indicators) == 1:
            path = hook.best_ckpt_path or runner.message_hub.get_info(
                'best_ckpt')
        else:
            path = hook.best_ckpt_path_dict.get(
                key) or runner.message_hub.get_info(f'best_ckpt_{key}')
        if not path:
            raise RuntimeError(
                f'No best checkpoint (`{key}`) was saved: no validation ran. '
                'Set `train_cfg.val_interval` and a `val_dataloader`, or use '
                "ExportBackbonesHook(source='last').")
        return path
