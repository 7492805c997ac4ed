from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmcl.registry import HOOKS


@HOOKS.register_module()
class MetaStepHook(Hook):
    """Tells a cohort distiller the loop's iteration index.

    The distiller's meta step runs when this index is a multiple of
    ``model.meta.interval``: the index within the epoch for an epoch-based
    loop (the reference's schedule, so also at every epoch's first
    iteration), the global iteration for an iteration-based loop. Both come
    back exactly on resume.
    """

    priority = 'NORMAL'

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if hasattr(model, 'train_iter'):
            model.train_iter = batch_idx
