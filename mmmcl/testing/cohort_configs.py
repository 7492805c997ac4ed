"""Small cohort model configs in the shape of the method bases, for tests
and benchmarks (``configs/_base_/models/`` builds the same parts)."""
import copy
from typing import Optional, Sequence


def lmcl_model(members: Sequence[dict],
               embed_dim: int = 8,
               contrast_loss: Optional[dict] = None,
               aux_depth: Optional[str] = 'full',
               meta: Optional[dict] = None,
               **overrides) -> dict:
    """An L-MCL ``CohortDistiller`` config (``configs/_base_/models/
    lmcl.py``): ``members`` with auxiliary branches, the stage aggregator
    teacher, the mutual contrast term (in-batch, tau 0.1, unless
    ``contrast_loss``), logit KD to every aggregated logit and, with
    ``meta``, the meta step. ``aux_depth=None`` and no ``meta`` give MCL.

    Args:
        members (Sequence[dict]): The peers' classifier configs.
        embed_dim (int): Embedding size. Defaults to 8.
        contrast_loss (dict, optional): Defaults to
            ``InBatchContrastLoss(tau=0.1)``.
        aux_depth (str, optional): Defaults to ``'full'``.
        meta (dict, optional): ``model.meta``. Defaults to None.
        **overrides: Other ``CohortDistiller`` arguments.
    """
    peers = dict(type='IndependentPeers', members=copy.deepcopy(members))
    model = dict(
        type='CohortDistiller',
        peers=peers,
        terms=dict(
            contrast=dict(
                type='MutualContrastTerm',
                embed_dim=embed_dim,
                contrast_loss=contrast_loss
                or dict(type='InBatchContrastLoss', tau=0.1))))
    if aux_depth is not None:
        peers['aux_depth'] = aux_depth
        model.update(
            teachers=dict(
                aggregator=dict(
                    target=dict(type='StageAggregatorTarget'),
                    ce_weight=1.0)),
            distill=[dict(teacher='aggregator', mimic='all')])
    if meta is not None:
        model['meta'] = meta
    model.update(overrides)
    return model
