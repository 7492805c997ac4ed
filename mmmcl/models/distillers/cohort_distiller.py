import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_gather, get_world_size
from mmengine.model import BaseModel, ModuleList
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor
from torch.func import functional_call

from mmmcl.registry import MODELS
from ..heads import EmbeddingHead, LayerMatchingWeights, StageAggregator
from ..losses import build_ramps
from ..utils import (BATCH_IDX, check_head_init, gather_rows, loop_progress,
                     pytorch_default_linear)
from .cohort_members import (build_branches, check_members, stage_positions,
                             with_num_classes)
from .interfaces import ContrastLoss, MatchingWeights, require
from .meta_step import MetaProblem, MetaStep, sgd_hyperparams

LOGIT_KD_MODES = (None, 'aggregator', 'mean', 'mutual')
CONTRAST_TERMS = ('vcl', 'soft_vcl', 'icl', 'soft_icl')
LOGIT_KD_TERM = 'kd'


@MODELS.register_module()
class CohortDistiller(BaseModel):
    r"""A cohort of M >= 2 classifiers trained together online.

    L-MCL, MCL, DML and independent baselines are configurations of it:

    - ``aux_depth`` adds auxiliary branches after every backbone output but
      the last, so each member has S = len(out_indices) stages (L-MCL);
      None keeps only the final stage (S = 1: MCL, DML, baseline).
    - ``contrast_loss`` + ``embed_dim`` add the four contrastive terms
      weighted by ``loss_weights`` (alpha, gamma, beta, lambda).
    - ``logit_kd``: ``'aggregator'`` (L-MCL: each final classifier mimics
      every member's aggregated logits :math:`\hat z_n`), ``'mean'`` (MCL:
      mimic the detached mean of the cohort's logits), ``'mutual'`` (DML:
      mimic each peer, averaged over peers) or None.
    - ``meta`` learns the layer-matching weights w with the bi-level meta
      step (paper section 6); None uses w = 1.
    - ``loss_ramp`` ramps distillation terms up (:class:`LossWeightRamp`);
      None keeps the paper's full weights from the first step.

    Only each member's own backbone, neck and head run at inference
    (``predict``): the ensemble score is the mean softmax of the members,
    each member's scores are kept in ``member_scores``.

    Args:
        members (Sequence[dict]): M mmpretrain classifier configs
            (``ImageClassifier`` with a pooling neck and a linear head).
        num_classes (int, optional): Filled into each member's head that
            does not give it. Defaults to the data preprocessor's
            ``num_classes``.
        data_preprocessor (dict, optional): Shared data preprocessor.
        aux_depth (str, optional): ``'full'`` or ``'one_block'`` auxiliary
            branches, or None. Defaults to None.
        embed_dim (int): Contrastive embedding size. Defaults to 128.
        contrast_loss (dict, optional): E.g.
            ``dict(type='InBatchContrastLoss', tau=0.1)``. Defaults to None.
        loss_weights (dict): Weights of ``vcl``, ``soft_vcl``, ``icl``,
            ``soft_icl``. Defaults to the CIFAR recipe (0.1, 1, 0.1, 1).
        logit_kd (str, optional): See above. Defaults to None.
        kd_loss (dict): The logit KD term. Defaults to
            ``dict(type='LogitKDLoss', temperature=3.0)``.
        meta (dict, optional): ``dict(interval=50, virtual_steps=2,
            momentum=0.9, proj_dim=128)`` and the switches of
            :class:`MetaStep` (``momentum_adjoint``, ``replay_bn``).
            Defaults to None.
        loss_ramp (dict | list[dict], optional): One ramp for every
            distillation term, e.g. ``dict(type='LossWeightRamp',
            shape='sigmoid', length=80)``, or several with disjoint
            ``terms`` (``vcl``, ``soft_vcl``, ``icl``, ``soft_icl``,
            ``kd``). Defaults to None.
        head_init (str): ``'mmpretrain'`` keeps each part's own
            initialisation (the members' ``LinearClsHead``: Normal(0, 0.01),
            the branches' classifiers: PyTorch's default Linear init);
            ``'reference'`` initialises as the authors' L-MCL code: the
            members' final classifiers with PyTorch's default Linear init
            (their init loop skips Linear layers), the branches' classifier
            biases at zero. Defaults to ``'mmpretrain'``.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 members: Sequence[dict],
                 num_classes: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None,
                 aux_depth: Optional[str] = None,
                 embed_dim: int = 128,
                 contrast_loss: Optional[dict] = None,
                 loss_weights: Optional[dict] = None,
                 logit_kd: Optional[str] = None,
                 kd_loss: Optional[dict] = None,
                 meta: Optional[dict] = None,
                 loss_ramp: Optional[Union[dict, Sequence[dict]]] = None,
                 head_init: str = 'mmpretrain',
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmpretrain.ClsDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not isinstance(members, (list, tuple)) or len(members) < 2:
            raise ValueError('`model.members` must list at least 2 '
                             'classifier configs (a cohort), got '
                             f'{members!r:.200}.')
        if logit_kd not in LOGIT_KD_MODES:
            raise ValueError(f'`model.logit_kd` must be one of '
                             f'{LOGIT_KD_MODES}, got {logit_kd!r}.')
        if logit_kd == 'aggregator' and aux_depth is None:
            raise ValueError("`model.logit_kd='aggregator'` aggregates the "
                             'stages of the auxiliary branches: set '
                             '`model.aux_depth`.')
        if meta is not None and (aux_depth is None or contrast_loss is None):
            raise ValueError('`model.meta` learns the layer-matching weights '
                             'of the contrastive terms across stages: it '
                             'needs `model.aux_depth` and '
                             '`model.contrast_loss`.')
        self.head_init = check_head_init(head_init)
        if num_classes is None and isinstance(data_preprocessor, dict):
            num_classes = data_preprocessor.get('num_classes')
        # mmengine's ModuleList: init_weights reaches each member's init_cfg
        self.members = ModuleList(
            MODELS.build(with_num_classes(m, num_classes)) for m in members)
        self.num_classes = check_members(self.members)
        self.logit_kd = logit_kd
        self.kd_loss = MODELS.build(
            kd_loss or dict(type='LogitKDLoss', temperature=3.0))

        self.stage_out = []  # positions in out_indices used as stages
        self.branches = ModuleList()
        for m, member in enumerate(self.members):
            self.stage_out.append(stage_positions(member, m, aux_depth))
            self.branches.append(
                build_branches(member, self.num_classes, aux_depth))
        self.num_stages = [len(p) for p in self.stage_out]
        feat_dims = [[member.head.in_channels] * s
                     for member, s in zip(self.members, self.num_stages)]

        self.aggregators = nn.ModuleList(
            StageAggregator(dims[0], len(dims)) for dims in feat_dims
        ) if logit_kd == 'aggregator' else None
        if contrast_loss is not None:
            self.contrast_loss = require(
                MODELS.build(contrast_loss), ContrastLoss,
                'CohortDistiller (`model.contrast_loss`)',
                fix='or use InBatchContrastLoss or MemoryBankContrastLoss')
            self.embed_heads = nn.ModuleList(
                nn.ModuleList(EmbeddingHead(d, embed_dim) for d in dims)
                for dims in feat_dims)
            weights = dict(vcl=0.1, soft_vcl=1., icl=0.1, soft_icl=1.)
            weights.update(loss_weights or {})
            if set(weights) != set(CONTRAST_TERMS):
                raise ValueError('`model.loss_weights` keys must be '
                                 f'{CONTRAST_TERMS}, got {sorted(weights)}.')
            self.loss_weights = weights
        else:
            self.contrast_loss = self.embed_heads = None
        if meta is not None:
            meta = dict(meta)
            self.meta_net = LayerMatchingWeights(
                feat_dims, proj_dim=meta.pop('proj_dim', 128))
            self.meta_step = MetaStep(**meta)
        else:
            self.meta_net = self.meta_step = None
        self.loss_ramps, self.ramp_of_term = build_ramps(
            loss_ramp, self.distill_terms)
        # Running sum of the batch-mean matching weights, (num_blocks, ), and
        # the number of batches in it; plain attributes, not in state_dict.
        self.matching_weight_sum: Optional[Tensor] = None
        self.matching_weight_count = 0
        # (final-stage embeddings, sample indices) of the last loss() with
        # memory banks, for the bank update after the backward.
        self._bank_update: Optional[Tuple[List[Tensor], Tensor]] = None

    def init_weights(self) -> None:
        """Each part's ``init_cfg``, then ``head_init='reference'``."""
        super().init_weights()
        if self.head_init == 'reference':
            for member in self.members:
                pytorch_default_linear(member.head)
            pytorch_default_linear(self.branches, weights=False,
                                   zero_bias=True)

    @property
    def distill_terms(self) -> Tuple[str, ...]:
        """Names of this cohort's distillation terms (no CE term)."""
        terms = CONTRAST_TERMS if self.contrast_loss is not None else ()
        return terms + ((LOGIT_KD_TERM, ) if self.logit_kd else ())

    def ramp_factor(self, term: str) -> float:
        """The current ramp-up factor of a distillation term (1 unramped)."""
        index = self.ramp_of_term.get(term)
        return 1. if index is None else self.loss_ramps[index].factor

    # ------------------------------------------------------------ forward
    def forward(self,
                inputs: Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """``tensor``: dict of ``feats``, ``logits`` (and ``embeddings``),
        each ``[m][s]``; ``loss``: dict of losses; ``predict``: samples."""
        if mode == 'tensor':
            return self.cohort_forward(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def cohort_forward(self, inputs: Tensor) -> Dict[str, list]:
        """Pooled features f[m][s] (B, D_m), logits z[m][s] (B, C) and,
        with a contrast loss, embeddings e[m][s] (B, embed_dim)."""
        feats, logits = [], []
        for member, branches in zip(self.members, self.branches):
            outs = member.backbone(inputs)
            member_feats, member_logits = [], []
            for branch, x in zip(branches, outs):
                feat, logit = branch(x)
                member_feats.append(feat)
                member_logits.append(logit)
            final = outs[-1:]
            if member.neck is not None:
                final = member.neck(final)
            member_feats.append(final[-1])
            member_logits.append(member.head(final))
            feats.append(member_feats)
            logits.append(member_logits)
        result = dict(feats=feats, logits=logits)
        if self.embed_heads is not None:
            result['embeddings'] = [[
                head(f) for head, f in zip(heads, member_feats)
            ] for heads, member_feats in zip(self.embed_heads, feats)]
        return result

    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        """All training losses, keyed ``member{m}[.s{s}].loss_*`` and
        ``loss_{vcl,soft_vcl,icl,soft_icl}`` (already weighted)."""
        labels = self._labels(data_samples, inputs.device)
        out = self.cohort_forward(inputs)
        losses = self.classification_losses(out['logits'], labels)
        if self.aggregators is not None:
            for m, (agg, feats, logits) in enumerate(
                    zip(self.aggregators, out['feats'], out['logits'])):
                agg_logits = agg(feats, logits)
                losses[f'member{m}.loss_agg_ce'] = \
                    self.members[m].head.loss_module(agg_logits, labels)
                out.setdefault('agg_logits', []).append(agg_logits)
        losses.update(self.logit_kd_losses(out))
        if self.contrast_loss is not None:
            weights = None
            if self.meta_net is not None:
                with torch.no_grad():
                    weights = self.meta_net(out['feats'])
                    batch_mean = weights.mean(1)
                    if self.matching_weight_sum is None:
                        self.matching_weight_sum = torch.zeros_like(batch_mean)
                        # a tensor: an int attribute would recompile a
                        # compiled step at every batch
                        self.matching_weight_count = batch_mean.new_zeros(())
                    self.matching_weight_sum += batch_mean
                    self.matching_weight_count += 1
            target = self.contrast_target(data_samples, labels)
            losses.update(
                self.contrast_losses(out['embeddings'], target, weights))
            if self.contrast_loss.uses_banks:
                # applied by train_step after the backward
                self._bank_update = ([e[-1].detach()
                                      for e in out['embeddings']],
                                     target[:, 0])
        return losses

    def classification_losses(self, logits: list,
                              labels: Tensor) -> Dict[str, Tensor]:
        """CE of every stage of every member (member head's loss module)."""
        losses = {}
        for m, member_logits in enumerate(logits):
            loss_module = self.members[m].head.loss_module
            for s, logit in enumerate(member_logits):
                key = f'member{m}.loss_ce' if s == len(member_logits) - 1 \
                    else f'member{m}.s{s + 1}.loss_ce'
                losses[key] = loss_module(logit, labels)
        return losses

    def contrast_target(self, data_samples: list, labels: Tensor) -> Tensor:
        """What the contrast loss compares against: the labels (in-batch
        negatives) or each sample's bank rows ``contrast_idx`` (B, K + 2)."""
        if not self.contrast_loss.uses_banks:
            return labels
        if not all('contrast_idx' in s for s in data_samples):
            raise ValueError(
                f'{type(self.contrast_loss).__name__} needs the bank rows '
                'of every sample (`data_samples.contrast_idx`): wrap the '
                "training set in dict(type='ContrastIndexDataset', "
                'dataset=...).')
        return torch.stack([s.contrast_idx for s in data_samples]).to(
            labels.device)

    def contrast_losses(
            self,
            embeddings: list,
            target: Tensor,
            weights: Optional[Tensor],
            banks: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
        """The four contrastive terms, times their loss weights.

        With in-batch negatives on W > 1 processes the terms are those of
        the global batch (:meth:`gather_batch`); a memory bank's terms are
        means over the local anchors, which DDP's gradient mean turns into
        the global batch's.

        Args:
            target (Tensor): Labels (B, ) or bank rows (B, K + 2), see
                :meth:`contrast_target`.
            banks (dict[str, Tensor], optional): Buffers of the contrast
                loss to read instead of its own (the meta step's carried
                banks), by their names in it. Defaults to None.
        """
        if not self.contrast_loss.uses_banks and get_world_size() > 1:
            embeddings, target, weights = self.gather_batch(
                embeddings, target, weights)
        args = (embeddings, target, weights)
        terms = self.contrast_loss(*args) if banks is None else \
            functional_call(self.contrast_loss, banks, args)
        return {
            f'loss_{k}': self.loss_weights[k] * self.ramp_factor(k) * v
            for k, v in terms.items()
        }

    @staticmethod
    def gather_batch(
        embeddings: list, labels: Tensor, weights: Optional[Tensor]
    ) -> Tuple[List[List[Tensor]], Tensor, Optional[Tensor]]:
        """The in-batch contrast inputs of every rank, in rank order.

        Every rank then computes the loss of the global batch, the
        single-process value. ``all_gather``'s backward sums over the ranks
        the gradient of each rank's (identical) loss with respect to this
        rank's rows: W times this rank's share of the single-process
        gradient. DDP averages over the ranks, so the parameters get the sum
        of the shares, the single-process gradient: the scale factor is
        W / W = 1. The same holds for the meta step's inner gradients, which
        :class:`MetaStep` averages over the ranks.

        Args:
            embeddings (list): ``embeddings[m][s]``, (B, D) on this rank.
            labels (Tensor): (B, ).
            weights (Tensor, optional): Block weights, (num_blocks, B).

        Returns:
            tuple: The same three, with the rows of all ranks (sum of the
            ranks' B); gradients flow back to each rank's own rows.
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

    def logit_kd_losses(self, out: dict) -> Dict[str, Tensor]:
        """Logit-level mimicry of each member's final classifier."""
        if self.logit_kd is None:
            return {}
        finals = [logits[-1] for logits in out['logits']]
        if self.logit_kd == 'aggregator':
            targets = [[z.detach() for z in out['agg_logits']]] * len(finals)
        elif self.logit_kd == 'mean':
            mean = torch.stack(finals).mean(0).detach()
            targets = [[mean]] * len(finals)
        else:
            targets = [[z.detach() for n, z in enumerate(finals) if n != m]
                       for m in range(len(finals))]
        losses = {}
        factor = self.ramp_factor(LOGIT_KD_TERM)
        for m, (logit, member_targets) in enumerate(zip(finals, targets)):
            kd = sum(self.kd_loss(logit, t) for t in member_targets)
            if self.logit_kd == 'mutual':
                kd = kd / len(member_targets)
            losses[f'member{m}.loss_{LOGIT_KD_TERM}'] = factor * kd
        return losses

    def predict(self,
                inputs: Tensor,
                data_samples: Optional[list] = None) -> list:
        """Ensemble (mean softmax) prediction; per-member scores too."""
        scores = []
        for member in self.members:
            feats = member.extract_feat(inputs)
            scores.append(F.softmax(member.head(feats), dim=1))
        scores = torch.stack(scores, dim=1)  # (B, M, C)
        if data_samples is None:
            from mmpretrain.structures import DataSample
            data_samples = [DataSample() for _ in range(inputs.shape[0])]
        for sample, score in zip(data_samples, scores):
            sample.set_pred_score(score.mean(0))
            sample.set_field(score, 'member_scores', field_type='data')
        return data_samples

    @staticmethod
    def _labels(data_samples: list, device) -> Tensor:
        return torch.cat([s.gt_label for s in data_samples]).to(device)

    # ---------------------------------------- interfaces (interfaces.py)
    def mean_matching_weights(self) -> Optional[MatchingWeights]:
        """Mean layer-matching weight of every block since the last call.

        Each training batch (``loss``) adds its batch mean; this returns the
        mean over those batches and starts a new mean.

        Returns:
            MatchingWeights | None: None without a meta-network or when no
            batch was seen since the last call.
        """
        if self.matching_weight_sum is None or self.matching_weight_count == 0:
            return None
        mean = (self.matching_weight_sum / self.matching_weight_count).cpu()
        self.matching_weight_sum = None
        self.matching_weight_count = 0
        return MatchingWeights(self.num_stages, mean)

    def meta_module(self) -> Optional[nn.Module]:
        """The meta-network phi (``model.meta``), None without one."""
        return self.meta_net

    def bank_rows(self) -> Optional[int]:
        """Rows of each memory bank, None with in-batch negatives."""
        if self.contrast_loss is None or not self.contrast_loss.uses_banks:
            return None
        return self.contrast_loss.num_samples

    def ddp_ignored_names(self) -> List[str]:
        """The meta-network's parameters, which the loss forward does not
        differentiate (the meta step all-reduces their hypergradient), and
        the contrast loss's buffers (the banks, updated from every rank's
        embeddings on every rank)."""
        names = []
        if self.meta_net is not None:
            names += [f'meta_net.{n}' for n, _ in
                      self.meta_net.named_parameters()]
        if self.contrast_loss is not None:
            names += [f'contrast_loss.{n}' for n, _ in
                      self.contrast_loss.named_buffers()]
        return names

    # --------------------------------------------------------------- train
    def train_step(self,
                   data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict],
                   run_forward: Optional[Callable] = None
                   ) -> Dict[str, Tensor]:
        """The normal update of theta, the bank update, then, when due, the
        meta step.

        Args:
            data (dict | tuple | list): A batch from the dataloader.
            optim_wrapper (OptimWrapper | OptimWrapperDict): ``cohort`` (and
                ``meta`` with a meta-network).
            run_forward (Callable, optional): Runs the loss forward on the
                preprocessed batch, ``run_forward(data, mode='loss')``.
                Defaults to this model's ``_run_forward``;
                :class:`CohortDistributedDataParallel` passes its own, so
                that DDP synchronises the gradients.

        Returns:
            dict[str, Tensor]: Logged losses and meta-step statistics.
        """
        if run_forward is None:
            run_forward = self._run_forward
        cohort_wrapper, meta_wrapper = self.optim_wrappers(optim_wrapper)
        with cohort_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = run_forward(data, mode='loss')
        parsed_losses, log_vars = self.parse_losses(losses)
        for term in self.ramp_of_term:
            log_vars[f'ramp/{term}'] = torch.tensor(self.ramp_factor(term))
        cohort_wrapper.update_params(parsed_losses)
        if self._bank_update is not None:
            self.contrast_loss.update_banks(*self._bank_update)
            self._bank_update = None
        if self.meta_step is not None and self._meta_due():
            start = time.perf_counter()
            labels = self._labels(data['data_samples'], data['inputs'].device)
            stats = self.meta_update(
                data['inputs'], labels,
                self.contrast_target(data['data_samples'], labels),
                cohort_wrapper, meta_wrapper)
            stats['meta/time'] = torch.tensor(time.perf_counter() - start)
            log_vars.update(stats)
        return log_vars

    @torch.compiler.disable
    def meta_update(self, inputs: Tensor, labels: Tensor, target: Tensor,
                    cohort_wrapper: OptimWrapper,
                    meta_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """One meta step (:class:`MetaStep`) on this batch, after the
        normal update; see :meth:`meta_problem` for the arguments. It runs
        eagerly under ``torch.compile`` (MMEngine's ``compile=True``
        compiles ``train_step``): its second-order replay is outside what
        compiled autograd supports, and it runs every ``interval`` steps.

        Returns:
            dict[str, Tensor]: ``meta/lr``, ``meta/outer_ce``,
            ``meta/hypergrad_norm``.
        """
        problem = self.meta_problem(inputs, labels, target, cohort_wrapper)
        try:
            stats = self.meta_step(problem, meta_wrapper)
        except torch.OutOfMemoryError as error:
            raise RuntimeError(
                'The meta step (model.meta) ran out of memory at batch size '
                f'{len(labels)} on this device; it needs about twice a '
                "normal step's activation memory: lower the batch size "
                '(train_dataloader.batch_size) or use a device with more '
                'memory.') from error
        stats['meta/lr'] = torch.tensor(cohort_wrapper.get_lr()['lr'][0])
        return stats

    def meta_problem(self, inputs: Tensor, labels: Tensor, target: Tensor,
                     cohort_wrapper: OptimWrapper) -> MetaProblem:
        """What the meta step differentiates on this batch: theta =
        members, branches and embedding heads, with the lr and weight decay
        of their group in ``cohort_wrapper``, their buffers; the inner
        objective is the weighted contrastive loss (w from the
        meta-network phi), the outer one the summed CE of every stage
        (:meth:`classification_losses`).

        Args:
            inputs (Tensor): The preprocessed batch, (B, 3, H, W).
            labels (Tensor): (B, ).
            target (Tensor): What the contrast loss compares against, see
                :meth:`contrast_target`.
            cohort_wrapper (OptimWrapper): The main optimizer's wrapper.
        """
        theta_modules = (self.members, self.branches, self.embed_heads)
        theta_ids = {id(p) for m in theta_modules for p in m.parameters()}
        theta = {
            n: p
            for n, p in self.named_parameters()
            if id(p) in theta_ids and p.requires_grad
        }
        buffer_ids = {id(b) for m in theta_modules for b in m.buffers()}
        buffers = {n: b for n, b in self.named_buffers() if id(b) in buffer_ids}
        lrs, weight_decays = sgd_hyperparams(theta, cohort_wrapper)
        phi = [p for p in self.meta_net.parameters() if p.requires_grad]
        # The reference's virtual steps write the banks (carried buffers):
        # the banks' names in the cohort -> in the contrast loss.
        bank_names = {}
        if self.contrast_loss.uses_banks and self.meta_step.carries_buffers:
            name_in = {id(b): n for n, b in self.contrast_loss.named_buffers()}
            name = {id(b): n for n, b in self.named_buffers()}
            bank_names = {
                name[id(b)]: name_in[id(b)]
                for b in self.contrast_loss.banks
            }
            buffers.update({n: self.get_buffer(n) for n in bank_names})

        def cohort_at(params: dict, state: dict) -> dict:
            return functional_call(self, (params, state), (inputs, ),
                                   dict(mode='tensor'))

        def contrast(params: dict, state: dict) -> Tensor:
            out = cohort_at(params, state)
            weights = self.meta_net(out['feats'])
            banks = {bank_names[n]: state[n] for n in bank_names} or None
            loss = sum(
                self.contrast_losses(out['embeddings'], target, weights,
                                     banks).values())
            if banks is not None:  # the reference's write, out of place
                rows, new_rows = self.contrast_loss.updated_rows(
                    [e[-1] for e in out['embeddings']], target[:, 0],
                    list(banks.values()))
                for n, bank_rows in zip(bank_names, new_rows):
                    state[n] = state[n].index_copy(0, rows, bank_rows)
            return loss

        def classification(params: dict, state: dict) -> Tensor:
            out = cohort_at(params, state)
            return sum(
                self.classification_losses(out['logits'], labels).values())

        return MetaProblem(theta, lrs, weight_decays, buffers, contrast,
                           classification, phi)

    def _meta_due(self) -> bool:
        batch_idx = loop_progress(BATCH_IDX, 'The meta step (`model.meta`)')
        return batch_idx % self.meta_step.interval == 0

    def optim_wrappers(
        self, optim_wrapper: Union[OptimWrapper, OptimWrapperDict]
    ) -> Tuple[OptimWrapper, Optional[OptimWrapper]]:
        """The wrappers of theta (``cohort``) and of the meta-network
        (``meta``, None without one)."""
        if isinstance(optim_wrapper, OptimWrapperDict):
            keys = set(optim_wrapper.keys())
            expected = {'cohort', 'meta'} if self.meta_net is not None \
                else {'cohort'}
            if keys != expected:
                raise KeyError(f'`optim_wrapper` must hold {sorted(expected)}'
                               f', got {sorted(keys)}.')
            meta = optim_wrapper['meta'] if 'meta' in keys else None
            return optim_wrapper['cohort'], meta
        if self.meta_net is not None:
            raise TypeError('`model.meta` needs two optimizers: use '
                            "optim_wrapper=dict(constructor='Cohort"
                            "OptimWrapperConstructor', cohort=..., meta=...).")
        return optim_wrapper, None
