from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmcl.registry import HOOKS


@HOOKS.register_module()
class CohortProgressHook(Hook):
    """Tells a cohort distiller where the training loop is.

    Before every training iteration it calls the model's
    ``set_train_progress(batch_idx, epoch, iteration)``: the meta step runs
    when the index it uses (the index within the epoch for an epoch-based
    loop, the reference's schedule, so also at every epoch's first
    iteration; the global iteration for an iteration-based loop) is a
    multiple of ``model.meta.interval``, and the loss-weight ramps
    (``model.loss_ramp``) read the epoch or the iteration. All three come
    back exactly on resume. Models without the method are left alone.
    """

    priority = 'NORMAL'

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        set_progress = getattr(model, 'set_train_progress', None)
        if set_progress is not None:
            set_progress(batch_idx, runner.epoch, runner.iter)
