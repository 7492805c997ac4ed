"""One classifier split at its stages into a shared trunk and branches."""
import copy
import itertools
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.model import BaseModule, ModuleDict
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import (STAGE_INIT_CFG, PeerOutputs, fresh_copies,
                     pytorch_default_linear, stage_layers)

Path = Tuple[int, ...]


class BranchStages(BaseModule):
    """Fresh copies of consecutive backbone stages: one node of the tree."""

    def __init__(self, stages: Sequence[nn.Module]) -> None:
        super().__init__(init_cfg=list(STAGE_INIT_CFG))
        self.layers = nn.Sequential(*fresh_copies(stages))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


@MODELS.register_module()
class BranchedClassifier(BaseModule):
    r"""Peers that share a trunk: a classifier split into a tree.

    The classifier's backbone stages ``[0, branch_at[0])`` (and its stem)
    are the shared trunk. At each split l the tree fans out into
    ``num_branches[l]`` copies of stages ``[branch_at[l], branch_at[l+1])``
    (the last level: to the end, with the backbone's post-stage layers, the
    neck and the head), so there are :math:`N = \prod_l n_l` leaves, the
    peers. ONE: ``branch_at=(2, ), num_branches=(3, )`` on a CIFAR ResNet;
    CL-ILR: ``branch_at=(1, 2), num_branches=(2, 2)``.

    Peer 0 is the classifier itself (trunk + its own stages, neck, head), so
    an unsplit checkpoint's weights are peer 0, and any peer's path exports
    as a plain backbone (:meth:`backbone_state_dict`). The other nodes are
    fresh copies, initialised as mmpretrain's ResNet. Peers are numbered
    depth-first: peer ``p`` takes child ``p // prod(n[l+1:]) % n[l]`` at
    split l.

    Args:
        classifier (dict): An mmpretrain classifier config (backbone with
            stages, a pooling neck, a linear head). Its backbone's
            ``out_indices`` are set here to the splits and the last stage.
        branch_at (Sequence[int]): The stage where each split's branches
            begin, increasing, from 1 to S - 1.
        num_branches (Sequence[int]): Children n_l >= 2 at each split.
        grad_rescale (bool): Divide the gradient reaching a split point by
            n_l, CL-ILR's intermediate-level rescaling (Song & Chai 2018).
            Defaults to False.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 classifier: dict,
                 branch_at: Sequence[int],
                 num_branches: Sequence[int],
                 grad_rescale: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        branch_at, num_branches = tuple(branch_at), tuple(num_branches)
        classifier = copy.deepcopy(classifier)
        backbone_cfg = classifier.get('backbone')
        if not isinstance(backbone_cfg, dict):
            raise TypeError('`model.peers.classifier.backbone` must be a '
                            f'backbone config, got {backbone_cfg!r:.100}.')
        # Build once to learn the number of stages, then with out_indices.
        num_stages = len(stage_layers(MODELS.build(backbone_cfg))[0])
        if (len(branch_at) != len(num_branches) or not branch_at
                or list(branch_at) != sorted(set(branch_at))
                or branch_at[0] < 1 or branch_at[-1] > num_stages - 1
                or min(num_branches) < 2):
            raise ValueError(
                '`model.peers.branch_at` must be increasing stage indices '
                f'from 1 to {num_stages - 1} (the backbone has {num_stages} '
                'stages), one per entry of `num_branches` (each >= 2); got '
                f'branch_at={branch_at}, num_branches={num_branches}.')
        backbone_cfg['out_indices'] = tuple(
            b - 1 for b in branch_at) + (num_stages - 1, )
        self.classifier = MODELS.build(classifier)
        self.branch_at = branch_at
        self.num_branches = num_branches
        self.grad_rescale = grad_rescale

        backbone = self.classifier.backbone
        stages, post = stage_layers(backbone)
        names = {id(m): n for n, m in backbone.named_modules()}
        bounds = list(branch_at) + [num_stages]
        self.level_stages = [
            list(range(bounds[lv], bounds[lv + 1]))
            for lv in range(len(branch_at))
        ]
        self.stage_names = [names[id(s)] for s in stages]
        self.post_name = names.get(id(post))  # None: no post-stage layers
        self.nodes = ModuleDict()
        self.leaf_necks = ModuleDict()
        self.leaf_heads = ModuleDict()
        last = len(branch_at) - 1
        for path in self._paths():
            if not any(path):
                continue  # the classifier's own path
            level = len(path) - 1
            parts = [stages[i] for i in self.level_stages[level]]
            if level == last and self.post_name is not None:
                parts.append(post)
            self.nodes[self._key(path)] = BranchStages(parts)
            if level == last:
                self.leaf_necks[self._key(path)] = copy.deepcopy(
                    self.classifier.neck)
                head = fresh_copies([self.classifier.head])[0]
                self.leaf_heads[self._key(path)] = head

    # ------------------------------------------------------------ tree
    def _paths(self) -> List[Path]:
        """Every node's path (child index at each split), level by level,
        each level depth-first."""
        return [
            p for lv in range(len(self.num_branches))
            for p in itertools.product(*map(range, self.num_branches[:lv + 1]))
        ]

    @staticmethod
    def _key(path: Path) -> str:
        return '_'.join(map(str, path))

    @property
    def num_peers(self) -> int:
        """N, the number of leaves."""
        n = 1
        for b in self.num_branches:
            n *= b
        return n

    def leaf_path(self, peer: int) -> Path:
        """Child index at each split on the way to peer ``peer``."""
        if not 0 <= peer < self.num_peers:
            raise IndexError(f'Peer {peer} out of range: this tree has '
                             f'{self.num_peers} peers.')
        return tuple(itertools.product(*map(range, self.num_branches)))[peer]

    def head(self, peer: int) -> nn.Module:
        """Peer ``peer``'s head (its ``loss_module`` is the peer's CE)."""
        key = self._key(self.leaf_path(peer))
        return self.leaf_heads[key] if key in self.leaf_heads \
            else self.classifier.head

    def stage_channels(self) -> List[List[int]]:
        """``[i][s]``: each peer's one stage, its pooled width D."""
        return [[self.head(p).in_channels] for p in range(self.num_peers)]

    def init_as_reference(self) -> None:
        """Every Linear layer with PyTorch's default init, as the zoo's
        reference codes leave them."""
        pytorch_default_linear(self)

    # ---------------------------------------------------------- forward
    def forward(self,
                inputs: Union[Tensor, Sequence[Tensor]],
                with_stages: bool = True) -> PeerOutputs:
        """Every peer's map, feature and logits.

        Args:
            inputs (Tensor | Sequence[Tensor]): Images (B, 3, H, W), or V
                views of them (e.g. from mmpretrain's ``MultiView``): peer
                p then sees view ``p % V``, through its own pass of the
                trunk.
            with_stages (bool): Unused: each peer has one stage, its own.

        Returns:
            PeerOutputs: N peers; ``trunk`` holds the classifier's split
            outputs on the (first) view.
        """
        views = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        leaves: Dict[int, Tensor] = {}
        trunk: List[Tensor] = []
        for v, view in enumerate(views):
            wanted = range(v, self.num_peers, len(views))
            maps, splits = self._tree_forward(
                view, [self.leaf_path(p) for p in wanted])
            leaves.update(zip(wanted, maps))
            if v == 0:
                trunk = splits
        maps = [leaves[p] for p in range(self.num_peers)]
        feats, logits = [], []
        for p, x in enumerate(maps):
            key = self._key(self.leaf_path(p))
            neck = self.leaf_necks[key] if key in self.leaf_necks \
                else self.classifier.neck
            feat = neck((x, ))[-1] if neck is not None else x
            feats.append(feat)
            logits.append(self.head(p)((feat, )))
        return PeerOutputs(maps=maps, feats=feats, logits=logits, trunk=trunk)

    def _tree_forward(
            self, x: Tensor,
            wanted: Sequence[Path]) -> Tuple[List[Tensor], List[Tensor]]:
        """Last maps of the ``wanted`` leaves and the classifier's split
        outputs; only the nodes on the way to a wanted leaf run."""
        outs = self.classifier.backbone(x)
        splits, own_last = list(outs[:-1]), outs[-1]
        computed: Dict[Path, Tensor] = {}

        def output(path: Path) -> Tensor:
            level = len(path) - 1
            if not any(path):
                out = splits[level + 1] if level + 1 < len(splits) \
                    else own_last
            elif path in computed:
                return computed[path]
            else:
                parent = splits[0] if level == 0 else output(path[:-1])
                out = self.nodes[self._key(path)](parent)
            computed[path] = out
            return out

        if self.grad_rescale:
            # ILR: the gradient summed from n_l children, divided by n_l.
            for level, n in enumerate(self.num_branches):
                for parent in sorted({p[:level] for p in wanted}):
                    t = splits[0] if level == 0 else output(parent)
                    if t.requires_grad:
                        t.register_hook(lambda g, n=n: g / n)
        return [output(p) for p in wanted], splits

    # ----------------------------------------------------------- export
    def backbone_state_dict(self, peer: int) -> Dict[str, Tensor]:
        """Peer ``peer``'s path as the weights of a plain backbone.

        The classifier's backbone keys, with the stages (and post-stage
        layers) of every node on the peer's path in place of its own: they
        load strictly into ``classifier.backbone`` built on its own.
        """
        state = self.classifier.backbone.state_dict()
        path = self.leaf_path(peer)
        for level in range(len(path)):
            if not any(path[:level + 1]):
                continue
            node = self.nodes[self._key(path[:level + 1])]
            names = [self.stage_names[i] for i in self.level_stages[level]]
            if level == len(path) - 1 and self.post_name is not None:
                names.append(self.post_name)
            for j, name in enumerate(names):
                prefix = f'layers.{j}.'
                for key, value in node.state_dict().items():
                    if key.startswith(prefix):
                        own = f'{name}.{key[len(prefix):]}'
                        if own not in state:
                            raise KeyError(
                                f'Peer {peer}: {own} of node '
                                f'{self._key(path[:level + 1])} is not a '
                                'key of the classifier backbone.')
                        state[own] = value
        return state
