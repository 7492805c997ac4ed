"""The training loop's position for a step taken outside a Runner."""
from contextlib import contextmanager
from typing import Iterator, Optional

from mmengine.logging import MessageHub

from mmmcl.models.utils import BATCH_IDX, EPOCH, ITER


@contextmanager
def train_progress(batch_idx: int = 0,
                   epoch: int = 0,
                   iteration: Optional[int] = None) -> Iterator[None]:
    """Publish where the loop is in the current MessageHub, as a Runner's
    ``RuntimeInfoHook`` (epoch, iteration) and ``CohortProgressHook``
    (batch index) do, and restore what it held on exit.

    Example:
        >>> with train_progress(batch_idx=0):  # the meta step is due
        ...     model.train_step(data, optim_wrapper)

    Args:
        batch_idx (int): The loop's batch index, the meta step's schedule.
            Defaults to 0.
        epoch (int): The epoch, which epoch ramps read. Defaults to 0.
        iteration (int, optional): The global iteration, which iteration
            ramps read. Defaults to ``batch_idx`` (an iteration of the
            first epoch).
    """
    hub = MessageHub.get_current_instance()
    values = {
        BATCH_IDX: batch_idx,
        EPOCH: epoch,
        ITER: batch_idx if iteration is None else iteration
    }
    saved = {key: hub.runtime_info[key] for key in values
             if key in hub.runtime_info}
    hub.update_info_dict(values)
    try:
        yield
    finally:
        for key in values:
            hub.pop_info(key)
        hub.update_info_dict(saved)
