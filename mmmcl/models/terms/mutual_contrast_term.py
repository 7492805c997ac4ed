"""MCL's four contrastive terms over every (peer, stage) pair (a term)."""
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.dist import all_gather, get_world_size
from torch import Tensor
from torch.func import functional_call

from mmmcl.registry import MODELS
from ..distillers.interfaces import ContrastLoss, require
from ..heads import EmbeddingHead
from ..utils import gather_rows

CONTRAST_TERMS = ('vcl', 'soft_vcl', 'icl', 'soft_icl')
Embeddings = List[List[Tensor]]


@MODELS.register_module()
class MutualContrastTerm(nn.Module):
    r"""Vanilla and soft, intra- and inter-network contrastive learning
    (VCL, soft VCL, ICL, soft ICL: MCL, AAAI 2022; L-MCL, TPAMI 2023).

    Every stage s of every peer i gets an embedding head,
    :math:`e_i^s = \mathrm{normalize}(\mathrm{MLP}(f_i^s))`; the contrast
    loss compares them over the blocks of :func:`cohort_blocks`, each
    weighted by the layer-matching weight of the distiller's meta-network
    (1 without one). With one stage per peer this is MCL.

    Args:
        contrast_loss (dict): ``InBatchContrastLoss`` (labels, in-batch
            negatives) or ``MemoryBankContrastLoss`` (bank rows).
        stage_channels (Sequence[Sequence[int]]): ``[i][s]`` pooled widths;
            the distiller fills it from its peers.
        embed_dim (int): Embedding size E. Defaults to 128.
        loss_weights (dict, optional): alpha, gamma, beta, lambda of
            ``vcl``, ``soft_vcl``, ``icl``, ``soft_icl``. Defaults to the
            CIFAR recipe (0.1, 1, 0.1, 1).
    """
    names = CONTRAST_TERMS

    def __init__(self,
                 contrast_loss: dict,
                 stage_channels: Sequence[Sequence[int]],
                 embed_dim: int = 128,
                 loss_weights: Optional[dict] = None) -> None:
        super().__init__()
        self.contrast_loss = require(
            MODELS.build(contrast_loss), ContrastLoss,
            'MutualContrastTerm (`contrast_loss`)',
            fix='or use InBatchContrastLoss or MemoryBankContrastLoss')
        self.embed_heads = nn.ModuleList(
            nn.ModuleList(EmbeddingHead(d, embed_dim) for d in dims)
            for dims in stage_channels)
        weights = dict(vcl=0.1, soft_vcl=1., icl=0.1, soft_icl=1.)
        weights.update(loss_weights or {})
        if set(weights) != set(CONTRAST_TERMS):
            raise ValueError('`loss_weights` of MutualContrastTerm must have '
                             f'the keys {CONTRAST_TERMS}, got '
                             f'{sorted(weights)}.')
        self.loss_weights = weights

    @property
    def uses_banks(self) -> bool:
        """Memory banks (True) or in-batch negatives."""
        return self.contrast_loss.uses_banks

    def forward(self, stage_feats: Embeddings) -> Embeddings:
        """Embeddings ``[i][s]`` (B, E) of the features ``[i][s]``."""
        return [[head(f) for head, f in zip(heads, feats)]
                for heads, feats in zip(self.embed_heads, stage_feats)]

    def target(self, data_samples: list, labels: Tensor) -> Tensor:
        """The labels (in-batch negatives) or each sample's bank rows
        ``contrast_idx`` (B, K + 2)."""
        if not self.uses_banks:
            return labels
        if not all('contrast_idx' in s for s in data_samples):
            raise ValueError(
                f'{type(self.contrast_loss).__name__} needs the bank rows '
                'of every sample (`data_samples.contrast_idx`): wrap the '
                "training set in dict(type='ContrastIndexDataset', "
                'dataset=...).')
        return torch.stack([s.contrast_idx for s in data_samples]).to(
            labels.device)

    def loss(self,
             embeddings: Embeddings,
             target: Tensor,
             weights: Optional[Tensor] = None,
             factors: Optional[Dict[str, Union[float, Tensor]]] = None,
             banks: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
        """The four terms ``loss_{vcl,soft_vcl,icl,soft_icl}``, each times
        its loss weight and ramp factor.

        With in-batch negatives on W > 1 processes the terms are those of
        the global batch (:meth:`gather_batch`); a memory bank's terms are
        means over the local anchors, which DDP's gradient mean turns into
        the global batch's.

        Args:
            target (Tensor): Labels (B, ) or bank rows (B, K + 2).
            weights (Tensor, optional): Block weights (num_blocks, B).
            factors (dict[str, float | Tensor], optional): Ramp factor of
                each term (a 0-dim tensor from a compiled step).
            banks (dict[str, Tensor], optional): Buffers of the contrast
                loss to read instead of its own (the meta step's carried
                banks), by their names in it.
        """
        if not self.uses_banks and get_world_size() > 1:
            embeddings, target, weights = self.gather_batch(
                embeddings, target, weights)
        args = (embeddings, target, weights)
        terms = self.contrast_loss(*args) if banks is None else \
            functional_call(self.contrast_loss, banks, args)
        factors = factors or {}
        return {
            f'loss_{k}': self.loss_weights[k] * factors.get(k, 1.) * v
            for k, v in terms.items()
        }

    @staticmethod
    def gather_batch(
        embeddings: Embeddings, labels: Tensor, weights: Optional[Tensor]
    ) -> Tuple[Embeddings, Tensor, Optional[Tensor]]:
        """The in-batch contrast inputs of every rank, in rank order.

        Every rank then computes the loss of the global batch, the
        single-process value. ``all_gather``'s backward sums over the ranks
        the gradient of each rank's (identical) loss with respect to this
        rank's rows: W times this rank's share of the single-process
        gradient. DDP averages over the ranks, so the parameters get the sum
        of the shares, the single-process gradient: the scale factor is
        W / W = 1. The same holds for the meta step's inner gradients, which
        :class:`MetaStep` averages over the ranks.

        Returns:
            tuple: The embeddings ``[i][s]``, labels (B, ) and weights
            (num_blocks, B) with the rows of all ranks (sum of the ranks'
            B); gradients flow back to each rank's own rows.
        """
        sizes = [int(n) for n in all_gather(labels.new_tensor([len(labels)]))]
        num_stages = [len(e) for e in embeddings]
        stacked = torch.stack([e for net in embeddings for e in net], dim=1)
        groups = iter(gather_rows(stacked, sizes).unbind(1))  # (B, G, D)
        embeddings = [[next(groups) for _ in range(s)] for s in num_stages]
        labels = gather_rows(labels, sizes)
        if weights is not None:
            weights = gather_rows(weights.T, sizes).T
        return embeddings, labels, weights

    # ----------------------------------------------------- memory banks
    def bank_rows(self) -> Optional[int]:
        """Rows of each memory bank, None with in-batch negatives."""
        return self.contrast_loss.num_samples if self.uses_banks else None

    def named_banks(self) -> Dict[str, Tensor]:
        """The banks by their names in the contrast loss (none
        in-batch), as :meth:`loss` reads ``banks``."""
        if not self.uses_banks:
            return {}
        name = {id(b): n for n, b in self.contrast_loss.named_buffers()}
        return {name[id(b)]: b for b in self.contrast_loss.banks}

    def bank_update(self, embeddings: Embeddings,
                    target: Tensor) -> Optional[Callable[[], dict]]:
        """The bank write of this step, to run after the update: each
        peer's final-stage embedding into its sample's row; None
        in-batch."""
        if not self.uses_banks:
            return None
        finals = [e[-1].detach() for e in embeddings]

        def update() -> dict:
            self.contrast_loss.update_banks(finals, target[:, 0])
            return {}

        return update

    def written_banks(self, embeddings: Embeddings, target: Tensor,
                      banks: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """``banks`` (by :meth:`named_banks` names) after this step's
        write, out of place: the meta step's carried banks."""
        rows, new_rows = self.contrast_loss.updated_rows(
            [e[-1] for e in embeddings], target[:, 0], list(banks.values()))
        return {
            n: bank.index_copy(0, rows, bank_rows)
            for (n, bank), bank_rows in zip(banks.items(), new_rows)
        }
