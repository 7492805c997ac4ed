from typing import Optional

from mmengine.hooks import Hook

from mmmcl.models.utils import BATCH_IDX
from mmmcl.registry import HOOKS


@HOOKS.register_module()
class CohortProgressHook(Hook):
    """Publishes the meta step's schedule index in the MessageHub.

    Before every training iteration it sets ``batch_idx``
    (:data:`~mmmcl.models.utils.BATCH_IDX`) to the loop's batch index: the
    index within the epoch for an epoch-based loop (the reference's
    schedule, so the meta step also runs at every epoch's first iteration),
    the global iteration for an iteration-based loop. The meta step runs
    when it is a multiple of ``model.meta.interval``. The loss-weight ramps
    (``model.loss_ramp``) read the epoch or the iteration that MMEngine's
    ``RuntimeInfoHook`` publishes. All three come back exactly on resume.
    """

    priority = 'NORMAL'

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        runner.message_hub.update_info(BATCH_IDX, batch_idx)
