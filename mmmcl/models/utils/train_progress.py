"""Where the training loop is, as the Runner's hooks publish it in the
MessageHub."""
import torch
from mmengine.logging import MessageHub

#: The epoch and the global iteration: MMEngine's ``RuntimeInfoHook``.
EPOCH = 'epoch'
ITER = 'iter'
#: The loop's ``batch_idx``, the meta step's schedule: the index within the
#: epoch for an epoch-based loop, the global iteration for an
#: iteration-based one; :class:`~mmmcl.engine.CohortProgressHook`.
BATCH_IDX = 'batch_idx'
PUBLISHERS = {
    EPOCH: "MMEngine's RuntimeInfoHook (default_hooks.runtime_info)",
    ITER: "MMEngine's RuntimeInfoHook (default_hooks.runtime_info)",
    BATCH_IDX: "default_hooks.cohort_progress=dict(type='CohortProgressHook')"
    ' (configs/_base_/default_runtime.py has it)',
}


@torch.compiler.disable
def loop_progress(key: str, caller: str) -> int:
    """``key`` (:data:`EPOCH`, :data:`ITER` or :data:`BATCH_IDX`) of the
    current MessageHub. Eager under ``torch.compile``, which cannot trace
    the MessageHub's lock.

    Args:
        key (str): The runtime info key.
        caller (str): Who reads it, named in the error.

    Raises:
        RuntimeError: Nothing published ``key``; names the hook that does.
    """
    value = MessageHub.get_current_instance().get_info(key)
    if value is None:
        raise RuntimeError(
            f'{caller} reads the training loop\'s {key!r} from the '
            f'MessageHub, but nothing published it: add {PUBLISHERS[key]}, '
            'or, outside a Runner, take the step inside '
            'mmmcl.testing.train_progress(...).')
    return value
