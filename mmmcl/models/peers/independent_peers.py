"""Peers that share nothing: M classifiers side by side."""
from typing import Dict, Sequence, Union

import torch.nn as nn
from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import PeerOutputs


@MODELS.register_module()
class IndependentPeers(BaseModule):
    """M mmpretrain classifiers, any architectures (KDCL, DML-style peers).

    Args:
        members (Sequence[dict]): Classifier configs (a backbone whose last
            output is the feature map, a pooling neck, a linear head).
    """

    def __init__(self, members: Sequence[dict]) -> None:
        super().__init__()
        self.members = ModuleList(MODELS.build(m) for m in members)

    @property
    def num_peers(self) -> int:
        return len(self.members)

    def head(self, peer: int) -> nn.Module:
        """Peer ``peer``'s head (its ``loss_module`` is the peer's CE)."""
        return self.members[peer].head

    def forward(self, inputs: Union[Tensor, Sequence[Tensor]]) -> PeerOutputs:
        """Every peer's map, feature and logits; with V views (Sequence),
        peer m sees view ``m % V``."""
        views = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        maps, feats, logits = [], [], []
        for m, member in enumerate(self.members):
            x = member.backbone(views[m % len(views)])[-1]
            feat = member.neck((x, ))[-1] if member.neck is not None else x
            maps.append(x)
            feats.append(feat)
            logits.append(member.head((feat, )))
        return PeerOutputs(maps=maps, feats=feats, logits=logits)

    def backbone_state_dict(self, peer: int) -> Dict[str, Tensor]:
        """Member ``peer``'s backbone weights."""
        if not 0 <= peer < self.num_peers:
            raise IndexError(f'Peer {peer} out of range: there are '
                             f'{self.num_peers} peers.')
        return self.members[peer].backbone.state_dict()
