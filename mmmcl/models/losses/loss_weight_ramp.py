import math
from typing import Dict, Optional, Sequence, Tuple, Union

import torch.nn as nn

from mmmcl.registry import MODELS
from ..utils import EPOCH, ITER, loop_progress

RAMP_SHAPES = ('sigmoid', 'linear')


@MODELS.register_module()
class LossWeightRamp(nn.Module):
    r"""A factor :math:`w(t) \in [0, 1]` that ramps distillation terms up.

    - ``'sigmoid'``: :math:`w(t) = \exp(-5 (1 - \min(t, L) / L)^2)`, the
      ramp-up of ONE, OKDDip, FFL and PCL (L = 80 of 300 CIFAR epochs);
    - ``'linear'``: :math:`w(t) = \min(t, L) / L`.

    t is the epoch (``by_epoch=True``: one value per epoch, as the
    references compute it) or the global iteration, read from the
    MessageHub, where MMEngine's ``RuntimeInfoHook`` publishes the loop's
    own (resumable) counters; :math:`w = 1` for :math:`L = 0`. The
    distiller multiplies each term in ``terms`` by :attr:`factor`.

    Args:
        shape (str): ``'sigmoid'`` or ``'linear'``. Defaults to
            ``'sigmoid'``.
        length (int): L, in epochs or iterations. Defaults to 80.
        by_epoch (bool): Whether t counts epochs. Defaults to True.
        terms (Sequence[str], optional): The loss terms it scales, e.g.
            ``('soft_vcl', 'soft_icl')`` or ``('kd_aggregator', )``; None
            scales every distillation term of the model (never the CE
            terms).
    """

    #: Version 1 kept t in a buffer ``progress``, which loading drops.
    _version = 2

    def __init__(self,
                 shape: str = 'sigmoid',
                 length: int = 80,
                 by_epoch: bool = True,
                 terms: Optional[Sequence[str]] = None) -> None:
        super().__init__()
        if shape not in RAMP_SHAPES:
            raise ValueError(f'`LossWeightRamp.shape` must be one of '
                             f'{RAMP_SHAPES}, got {shape!r}.')
        if length < 0:
            raise ValueError(
                f'`LossWeightRamp.length` must be >= 0, got {length}.')
        if isinstance(terms, str):
            terms = (terms, )
        self.shape = shape
        self.length = length
        self.by_epoch = by_epoch
        self.terms: Optional[Tuple[str, ...]] = \
            None if terms is None else tuple(terms)

    @property
    def factor(self) -> float:
        """w(t) at the loop's current epoch or iteration."""
        if self.length == 0:
            return 1.
        t = loop_progress(EPOCH if self.by_epoch else ITER, 'LossWeightRamp')
        ratio = min(max(t, 0), self.length) / self.length
        if self.shape == 'linear':
            return ratio
        return math.exp(-5. * (1. - ratio)**2)

    def _load_from_state_dict(self, state_dict: dict, prefix: str,
                              local_metadata: dict, *args, **kwargs) -> None:
        if (local_metadata.get('version') or 1) < 2:
            state_dict.pop(prefix + 'progress', None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      *args, **kwargs)

    def extra_repr(self) -> str:
        unit = 'epochs' if self.by_epoch else 'iters'
        return (f'shape={self.shape!r}, length={self.length} {unit}, '
                f'terms={self.terms}')


def build_ramps(cfg: Optional[Union[dict, Sequence[dict]]],
                distill_terms: Sequence[str]
                ) -> Tuple[nn.ModuleList, Dict[str, int]]:
    """The ramps of ``model.loss_ramp`` and, for each ramped term, the
    index of its ramp.

    Args:
        cfg (dict | Sequence[dict], optional): One ramp for every term, or
            several with disjoint ``terms``.
        distill_terms (Sequence[str]): The model's distillation terms.

    Raises:
        ValueError: A ramp names a term the model lacks, or two ramps ramp
            the same term.
    """
    cfgs = [] if cfg is None else [cfg] if isinstance(cfg, dict) \
        else list(cfg)
    ramps = nn.ModuleList(MODELS.build(c) for c in cfgs)
    ramp_of_term: Dict[str, int] = {}
    for i, ramp in enumerate(ramps):
        field = '`model.loss_ramp' + (f'[{i}]' if len(cfgs) > 1 else '')
        terms = tuple(distill_terms) if ramp.terms is None else ramp.terms
        for term in terms:
            if term not in distill_terms:
                raise ValueError(
                    f'{field}.terms` names {term!r}, not a distillation '
                    f'term of this model: {tuple(distill_terms)}.')
            if term in ramp_of_term:
                raise ValueError(
                    f'{field}` ramps {term!r}, which '
                    f'`model.loss_ramp[{ramp_of_term[term]}]` already '
                    'ramps: give each term one ramp.')
            ramp_of_term[term] = i
    return ramps, ramp_of_term
