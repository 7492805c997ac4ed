"""Peers that share nothing: M classifiers side by side."""
from typing import Dict, List, Optional, Sequence, Union

import torch.nn as nn
from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import PeerOutputs, pytorch_default_linear
from .member_stages import build_branches, check_members, stage_positions


@MODELS.register_module()
class IndependentPeers(BaseModule):
    """M mmpretrain classifiers, any architectures (L-MCL, MCL, DML, KDCL).

    With ``aux_depth`` every member also classifies each backbone output
    but the last through an auxiliary branch (L-MCL, paper section 5): the
    member has S = len(out_indices) stages, whose pooled features and
    logits the outputs carry as ``stage_feats`` / ``stage_logits`` (the
    final stage last).

    Args:
        members (Sequence[dict]): Classifier configs (a backbone yielding
            its stage outputs, a pooling neck, a linear head).
        aux_depth (str, optional): ``'full'`` or ``'one_block'`` auxiliary
            branches (:class:`AuxiliaryBranch`), or None. Defaults to None.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 members: Sequence[dict],
                 aux_depth: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(members, (list, tuple)) or len(members) < 2:
            raise ValueError('`model.peers.members` must list at least 2 '
                             'classifier configs, got '
                             f'{members!r:.200}.')
        # mmengine's ModuleList: init_weights reaches each member's init_cfg
        self.members = ModuleList(MODELS.build(m) for m in members)
        self.num_classes = check_members(self.members)
        self.stage_out = [
            stage_positions(member, m, aux_depth)
            for m, member in enumerate(self.members)
        ]
        self.branches = ModuleList(
            build_branches(member, self.num_classes, aux_depth)
            for member in self.members)

    @property
    def num_peers(self) -> int:
        return len(self.members)

    def stage_channels(self) -> List[List[int]]:
        """``[i][s]``: the pooled width D_i of every stage of peer i."""
        return [[member.head.in_channels] * len(out)
                for member, out in zip(self.members, self.stage_out)]

    def head(self, peer: int) -> nn.Module:
        """Peer ``peer``'s head (its ``loss_module`` is the peer's CE)."""
        return self.members[peer].head

    def init_as_reference(self) -> None:
        """The reference codes' classifiers: the members' heads with
        PyTorch's default Linear init (their init loops skip Linear
        layers), the branches' classifier biases at zero (L-MCL's)."""
        for member in self.members:
            pytorch_default_linear(member.head)
        pytorch_default_linear(self.branches, weights=False, zero_bias=True)

    def forward(self,
                inputs: Union[Tensor, Sequence[Tensor]],
                with_stages: bool = True) -> PeerOutputs:
        """Every peer's map, feature and logits (and stages, with
        branches); with V views (Sequence), peer m sees view ``m % V``.
        ``with_stages=False`` runs no branch (prediction)."""
        views = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        maps, stage_feats, stage_logits = [], [], []
        for m, (member, branches) in enumerate(
                zip(self.members, self.branches)):
            outs = member.backbone(views[m % len(views)])
            feats, logits = [], []
            for branch, x in zip(branches if with_stages else (), outs):
                feat, logit = branch(x)
                feats.append(feat)
                logits.append(logit)
            final = outs[-1:]
            if member.neck is not None:
                final = member.neck(final)
            maps.append(outs[-1])
            feats.append(final[-1])
            logits.append(member.head(final))
            stage_feats.append(feats)
            stage_logits.append(logits)
        return PeerOutputs(
            maps=maps,
            feats=[f[-1] for f in stage_feats],
            logits=[z[-1] for z in stage_logits],
            stage_feats=stage_feats,
            stage_logits=stage_logits)

    def backbone_state_dict(self, peer: int) -> Dict[str, Tensor]:
        """Member ``peer``'s backbone weights."""
        if not 0 <= peer < self.num_peers:
            raise IndexError(f'Peer {peer} out of range: there are '
                             f'{self.num_peers} peers.')
        return self.members[peer].backbone.state_dict()
