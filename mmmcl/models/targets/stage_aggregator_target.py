"""Each peer's stages aggregated into one classifier (L-MCL's teacher)."""
from typing import List, Sequence

from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from mmmcl.registry import MODELS
from ..heads import StageAggregator
from ..utils import PeerOutputs


@MODELS.register_module()
class StageAggregatorTarget(BaseModule):
    r"""One :class:`StageAggregator` per peer: peer i's target is
    :math:`\hat z_i = \sum_s a_i^s z_i^s` over its S_i stages (paper
    section 5), trained by its own CE (``ce_weight``). L-MCL's final
    classifiers each mimic every :math:`\hat z_n`
    (``dict(teacher=..., mimic='all')``).

    Args:
        stage_channels (Sequence[Sequence[int]]): ``[i][s]`` pooled width of
            each stage of each peer; the distiller fills it from its peers.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 stage_channels: Sequence[Sequence[int]],
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if any(len(dims) < 2 for dims in stage_channels):
            raise ValueError(
                'StageAggregatorTarget aggregates the stages of auxiliary '
                'branches: set `model.peers.aux_depth` (stages per peer: '
                f'{[len(d) for d in stage_channels]}).')
        self.aggregators = ModuleList(
            StageAggregator(dims[0], len(dims)) for dims in stage_channels)

    def forward(self, outputs: PeerOutputs) -> List[Tensor]:
        """Each peer's aggregated logits, (B, C)."""
        return [
            aggregator(feats, logits) for aggregator, feats, logits in zip(
                self.aggregators, outputs.feats_by_stage(),
                outputs.logits_by_stage())
        ]
