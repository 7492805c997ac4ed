import random
from typing import Dict, Iterator, Optional

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.runner import IterBasedTrainLoop

from mmmcl.registry import HOOKS


def _get_rng_state() -> Dict[str, object]:
    """States of torch (CPU and every CUDA device), numpy and ``random``.

    Only tensors, ints, floats, strings and None, so that a checkpoint
    holding it loads with ``torch.load(weights_only=True)``.
    """
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=dict(
            name=name,
            keys=torch.from_numpy(keys.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached_gaussian=float(cached_gaussian)),
        random=dict(
            version=version,
            state=torch.tensor(internal, dtype=torch.int64),
            gauss_next=gauss_next))
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Dict[str, object]) -> None:
    """Restore what :func:`_get_rng_state` returned.

    The tensors may have been mapped to a GPU by the checkpoint loader; they
    are moved back to the CPU first.
    """
    torch.set_rng_state(state['torch'].cpu())
    cuda = state.get('cuda', [])
    if cuda and torch.cuda.is_available():
        count = torch.cuda.device_count()
        if len(cuda) != count:
            MMLogger.get_current_instance().warning(
                f'The checkpoint holds the RNG states of {len(cuda)} CUDA '
                f'devices but {count} are visible: restoring the first '
                f'{min(len(cuda), count)}.')
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda[:count]])
    np_state = state['numpy']
    np.random.set_state(
        (np_state['name'], np_state['keys'].cpu().numpy().astype(np.uint32),
         np_state['pos'], np_state['has_gauss'], np_state['cached_gaussian']))
    py_state = state['random']
    random.setstate((py_state['version'], tuple(py_state['state'].tolist()),
                     py_state['gauss_next']))


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Saves the random states in checkpoints and restores them on resume.

    mmengine reseeds every run from ``randomness.seed``, so a resumed run
    draws other augmentations than the uninterrupted one. This hook stores
    the states of torch (CPU, every CUDA device), numpy's global
    ``np.random`` and python's ``random`` under ``checkpoint['rng_state']``
    and puts them back when the runner resumes (``resume=True``). Loading
    weights with ``load_from`` alone never touches them.

    They are restored in ``after_load_checkpoint`` and once more in
    ``before_train``: :meth:`mmengine.runner.Runner.resume` reseeds after
    loading when the checkpoint's seed differs from the config's (e.g.
    ``seed=None``). An iteration-based loop resumed mid-run first replays
    the dataloader up to the saved iteration, which draws augmentations;
    there the states are restored once more, just before the first batch
    that is trained on.

    Only the saving rank's states are stored (rank 0): in distributed runs
    every rank resumes with them.
    """

    priority = 'NORMAL'

    def __init__(self) -> None:
        self._resumed_state: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = _get_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume or 'rng_state' not in checkpoint:
            return
        if get_world_size() > 1:
            MMLogger.get_current_instance().warning(
                'RandomStateHook restores the RNG states of rank 0 on every '
                'rank.')
        self._resumed_state = checkpoint['rng_state']
        _set_rng_state(self._resumed_state)

    def before_train(self, runner) -> None:
        if self._resumed_state is not None:
            _set_rng_state(self._resumed_state)

    def before_train_epoch(self, runner) -> None:
        state, self._resumed_state = self._resumed_state, None
        loop = runner.train_loop
        if (state is not None and isinstance(loop, IterBasedTrainLoop)
                and loop.iter > 0):
            loop.dataloader_iterator = _RestoreAfterReplay(
                loop.dataloader_iterator, loop.iter, state)


class _RestoreAfterReplay:
    """Wraps a loop's dataloader iterator: after ``num_replayed`` batches
    (the ones the resumed loop skips), restores ``state`` once before the
    next batch is drawn."""

    def __init__(self, iterator: Iterator, num_replayed: int,
                 state: Dict[str, object]) -> None:
        self._iterator = iterator
        self._num_left = num_replayed
        self._state: Optional[Dict[str, object]] = state

    def __iter__(self) -> '_RestoreAfterReplay':
        return self

    def __next__(self):
        if self._num_left == 0 and self._state is not None:
            _set_rng_state(self._state)
            self._state = None
        self._num_left -= 1
        return next(self._iterator)
