"""What a group of peers computes on a batch, for targets and losses."""
from dataclasses import dataclass, field, replace
from typing import List, Optional, Sequence

from torch import Tensor


@dataclass
class PeerOutputs:
    """The outputs of N peers on one batch of B images.

    Attributes:
        maps (list[Tensor]): Each peer's last feature map, (B, C_i, H, W).
        feats (list[Tensor]): Each peer's pooled feature h_i, (B, D_i).
        logits (list[Tensor]): Each peer's logits z_i, (B, C).
        trunk (list[Tensor]): For peers that share a trunk, its output at
            each split, (B, C_l, H_l, W_l), outermost first; empty for
            independent peers.
        labels (Tensor, optional): The labels y, (B, ).
    """
    maps: List[Tensor]
    feats: List[Tensor]
    logits: List[Tensor]
    trunk: List[Tensor] = field(default_factory=list)
    labels: Optional[Tensor] = None

    def __len__(self) -> int:
        return len(self.logits)

    def select(self, indices: Optional[Sequence[int]]) -> 'PeerOutputs':
        """The outputs of the peers ``indices`` (all for None)."""
        if indices is None:
            return self
        return replace(self,
                       maps=[self.maps[i] for i in indices],
                       feats=[self.feats[i] for i in indices],
                       logits=[self.logits[i] for i in indices])

    def detach(self) -> 'PeerOutputs':
        """The same outputs cut from the graph."""
        return replace(self,
                       maps=[x.detach() for x in self.maps],
                       feats=[x.detach() for x in self.feats],
                       logits=[x.detach() for x in self.logits],
                       trunk=[x.detach() for x in self.trunk])
