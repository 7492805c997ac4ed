"""What a group of peers computes on a batch, for targets and losses."""
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence

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
        stage_feats (list[list[Tensor]]): Peers with auxiliary branches:
            ``stage_feats[i][s]``, (B, D_i), the final stage last; empty
            otherwise (:meth:`feats_by_stage` gives the final stage then).
        stage_logits (list[list[Tensor]]): The same for the logits z_i^s,
            (B, C).
        embeddings (dict[str, list[list[Tensor]]]): What each term embeds
            of the stage features, by term name (``[i][s]``, (B, E)).
        labels (Tensor, optional): The labels y, (B, ).
    """
    maps: List[Tensor]
    feats: List[Tensor]
    logits: List[Tensor]
    trunk: List[Tensor] = field(default_factory=list)
    stage_feats: List[List[Tensor]] = field(default_factory=list)
    stage_logits: List[List[Tensor]] = field(default_factory=list)
    embeddings: Dict[str, List[List[Tensor]]] = field(default_factory=dict)
    labels: Optional[Tensor] = None

    def __len__(self) -> int:
        return len(self.logits)

    def feats_by_stage(self) -> List[List[Tensor]]:
        """``[i][s]`` pooled features of every stage, (B, D_i)."""
        return self.stage_feats or [[f] for f in self.feats]

    def logits_by_stage(self) -> List[List[Tensor]]:
        """``[i][s]`` logits of every stage, (B, C)."""
        return self.stage_logits or [[z] for z in self.logits]

    def select(self, indices: Optional[Sequence[int]]) -> 'PeerOutputs':
        """The outputs of the peers ``indices`` (all for None)."""
        if indices is None:
            return self

        def pick(values: list) -> list:
            return [values[i] for i in indices] if values else values

        return replace(
            self,
            maps=pick(self.maps),
            feats=pick(self.feats),
            logits=pick(self.logits),
            stage_feats=pick(self.stage_feats),
            stage_logits=pick(self.stage_logits),
            embeddings={k: pick(v)
                        for k, v in self.embeddings.items()})
