import os.path as osp

from mmengine.dist import master_only
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper

from mmmcl.apis.export import load_cohort_checkpoint, save_backbone
from mmmcl.registry import HOOKS

SOURCES = ('best', 'last')


@HOOKS.register_module()
class ExportBackbonesHook(Hook):
    """Exports every member's backbone at the end of training.

    Writes ``{work_dir}/backbones/member{i}.pth`` for each member i, in the
    format of ``tools/model_converters/export_backbone.py`` (checked against
    the member's backbone config, loadable by mmdet / mmseg with
    ``init_cfg=dict(type='Pretrained', checkpoint=...)``). Only rank 0
    writes.

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
        if self.source == 'best':
            self._checkpoint_hook(runner)  # fail now, not after training

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
        for member in range(len(cfg.model.members)):
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
            "top1'), or use source='last'.")

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
