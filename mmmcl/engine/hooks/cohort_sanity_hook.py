import re
from typing import Dict, Optional

import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import MMLogger

from mmmcl.models.distillers import NumClassesModel, require
from mmmcl.registry import HOOKS

MEMBER_TOP1 = re.compile(r'(^|/)member\d+/accuracy/top1$')


@HOOKS.register_module()
class CohortSanityHook(Hook):
    """Warns about two symptoms of a broken cohort config.

    - At each training epoch's end: a logged ``train/*loss*`` term took the
      same value at every iteration of the epoch (e.g. identically 0: a
      zero loss weight, a term without positives).
    - From the ``min_val_runs``-th validation on: a member's top-1
      (``member{m}/accuracy/top1``, in %) is at chance, at most
      ``100 / num_classes + margin`` (``model.num_classes``,
      :class:`~mmmcl.models.distillers.NumClassesModel`).

    Warnings only (``MMLogger``): the run goes on.

    Args:
        margin (float): Percentage points above chance still counted as
            chance. Defaults to 1.
        min_val_runs (int): First validation checked. Defaults to 2.
    """

    priority = 'LOW'

    def __init__(self, margin: float = 1., min_val_runs: int = 2) -> None:
        self.margin = margin
        self.min_val_runs = min_val_runs
        self._epoch_start_iter = 0
        self._val_runs = 0

    def before_train_epoch(self, runner) -> None:
        self._epoch_start_iter = runner.iter

    def after_train_epoch(self, runner) -> None:
        num_iters = runner.iter - self._epoch_start_iter
        if num_iters < 2:
            return
        logger = MMLogger.get_current_instance()
        for key, buffer in runner.message_hub.log_scalars.items():
            if not key.startswith('train/') or 'loss' not in key:
                continue
            values = np.asarray(buffer.data[0])[-num_iters:]
            if len(values) == num_iters and np.all(values == values[0]):
                logger.warning(
                    f'`{key[len("train/"):]}` was {values[0]:g} at each of '
                    f'the {num_iters} iterations of epoch {runner.epoch + 1}'
                    ': a term that never changes usually means a config '
                    'error (a zero loss weight, a detached or empty term).')

    def after_val_epoch(self,
                        runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        num_classes = require(runner.model, NumClassesModel,
                              'CohortSanityHook').num_classes
        self._val_runs += 1
        if self._val_runs < self.min_val_runs or not metrics:
            return
        chance = 100 / num_classes
        for key, value in metrics.items():
            if MEMBER_TOP1.search(key) and value <= chance + self.margin:
                MMLogger.get_current_instance().warning(
                    f'`{key}` is {value:.2f}% at validation {self._val_runs}'
                    f', chance level for {num_classes} classes '
                    f'({chance:.2f}%): this member does not learn.')
