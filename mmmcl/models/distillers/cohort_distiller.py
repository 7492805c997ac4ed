"""The one online distiller: peers -> teachers -> terms -> post-updates."""
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModel, ModuleDict
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor

from mmmcl.registry import MODELS
from ..heads import LayerMatchingWeights
from ..losses import build_ramps
from ..utils import BATCH_IDX, PeerOutputs, check_head_init, loop_progress
from .cohort_predict import CohortPredictMixin
from .cohort_specs import check_classifier, part_cfg, peers_cfg
from .cohort_teachers import CohortTeachers
from .interfaces import CohortPeers, CohortTerm, MatchingWeights, require
from .legacy import map_legacy_keys
from .logit_distillation import LogitDistillation
from .meta_problem import cohort_meta_problem
from .meta_step import MetaStep

PostUpdate = Callable[[], Dict[str, Tensor]]


@MODELS.register_module()
class CohortDistiller(CohortPredictMixin, BaseModel):
    r"""Peers trained together online: every method of mmmcl.

    A step runs the ``peers`` (independent classifiers, with auxiliary
    branches for L-MCL's stages, or a trunk split into branches), the
    ``teachers`` (targets built from the peers: a mean, a gate, attention,
    a fusion module, L-MCL's stage aggregators), the ``distill`` entries
    (students mimic a teacher with ``kd_loss``) and the ``terms`` (losses on
    the peers' features: MCL's contrastive terms), then, after the update,
    the post-update steps: the terms' bank writes, the ``temporal_mean``
    and, every ``meta.interval`` steps, the meta step of the layer-matching
    weights. The loss is

    .. math::
        \sum_{p,s} w_{ce} \mathrm{CE}(z_p^s, y) + \sum_t w_t \mathrm{CE}
        (z_t, y) + \sum_d r_d w_d \sum_{s} \mathrm{KD}(z_s, x_{d,s})
        + \sum_k r_k \mathcal{L}_k

    with the ramp factors r of ``loss_ramp`` (1 without one), keyed
    ``peer{p}[.s{s}].loss_ce``, ``{teacher}[.peer{p}].loss_ce``,
    ``{student}.loss_kd_{teacher}`` and ``{term}.loss_{k}``. Prediction:
    every peer's softmax (``member_scores``), their mean and the named
    ``classifiers``.

    Args:
        peers (dict): ``IndependentPeers`` or ``BranchedClassifier``; heads
            get ``num_classes`` if they name none.
        teachers (dict[str, dict], optional): Name -> ``dict(target=...,
            peers=None, source='online', ce_weight=0.)``
            (:class:`CohortTeachers`).
        distill (Sequence[dict]): ``dict(teacher=NAME, students='peers',
            weight=1., detach=True, mimic='paired')``, each a term
            ``kd_<teacher>`` (:class:`LogitDistillation`).
        terms (dict[str, dict], optional): Name -> a term config, e.g.
            ``MutualContrastTerm`` (its ``stage_channels`` filled in).
        meta (dict, optional): The meta-network of the layer-matching
            weights (``proj_dim``) and its :class:`MetaStep` (``interval``,
            ``virtual_steps``, ``momentum`` and the switches). Needs a term.
        kd_loss (dict, optional): The distillation's KD loss. Defaults to
            ``dict(type='LogitKDLoss', temperature=3.0)``.
        ce_weight (float): w_ce of the peers' CE. Defaults to 1.
        temporal_mean (dict, optional): An MMEngine averaged-model config of
            the peers, updated after every step, for teachers with
            ``source='temporal_mean'`` and, with ``test=True``, prediction;
            ``own_buffers=True`` keeps the BN statistics of its own forward.
        loss_ramp (dict | list[dict], optional): :class:`LossWeightRamp`
            of the distill and term names (``kd_<teacher>``, ``vcl``...).
        classifiers (dict[str, dict], optional): Named classifiers a paper
            reports: ``dict(teacher=NAME)``, ``dict(peer=P)`` or
            ``dict(source='temporal_mean', peer=None)``.
        num_classes (int, optional): Defaults to the data preprocessor's.
        head_init (str): ``'mmpretrain'`` (each part's own init) or
            ``'reference'`` (the peers' ``init_as_reference``, as the
            reference codes leave their classifiers). Defaults to
            ``'mmpretrain'``.
        data_preprocessor (dict, optional): Defaults to mmpretrain's
            ``ClsDataPreprocessor``.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 peers: dict,
                 teachers: Optional[Dict[str, dict]] = None,
                 distill: Sequence[dict] = (),
                 terms: Optional[Dict[str, dict]] = None,
                 meta: Optional[dict] = None,
                 kd_loss: Optional[dict] = None,
                 ce_weight: float = 1.,
                 temporal_mean: Optional[dict] = None,
                 loss_ramp: Optional[Union[dict, Sequence[dict]]] = None,
                 classifiers: Optional[Dict[str, dict]] = None,
                 num_classes: Optional[int] = None,
                 head_init: str = 'mmpretrain',
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmpretrain.ClsDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if num_classes is None and isinstance(data_preprocessor, dict):
            num_classes = data_preprocessor.get('num_classes')
        self.head_init = check_head_init(head_init)
        self.peers = require(
            MODELS.build(peers_cfg(peers, num_classes)), CohortPeers,
            'CohortDistiller (`model.peers`)',
            fix='or use IndependentPeers or BranchedClassifier')
        self.num_classes = self.peers.head(0).num_classes
        self.ce_weight = ce_weight
        fill = dict(num_classes=self.num_classes,
                    stage_channels=self.peers.stage_channels())
        self.teachers = CohortTeachers(teachers, **fill)
        self.distillation = LogitDistillation(distill, self.teachers, kd_loss)
        self.terms = ModuleDict({
            name: require(
                MODELS.build(part_cfg(cfg, **fill)), CohortTerm,
                f'CohortDistiller (`model.terms.{name}`)',
                fix='or use MutualContrastTerm')
            for name, cfg in (terms or {}).items()
        })
        names = self.distillation.names + [
            k for term in self.terms.values() for k in term.names
        ]
        if len(set(names)) != len(names):
            raise ValueError('`model.distill` and `model.terms` must name '
                             f'each loss term once, got {names}.')
        self.meta_net = self.meta_step = None
        if meta is not None:
            if not self.terms:
                raise ValueError('`model.meta` learns the weights of the '
                                 'terms\' blocks: set `model.terms`.')
            meta = dict(meta)
            self.meta_net = LayerMatchingWeights(
                fill['stage_channels'], proj_dim=meta.pop('proj_dim', 128))
            self.meta_step = MetaStep(**meta)
        self.loss_ramps, self.ramp_of_term = build_ramps(loss_ramp, names)
        self.build_temporal_mean(temporal_mean)
        self.classifiers = {
            name: check_classifier(name, spec, self.teachers.specs,
                                   self.temporal_mean is not None)
            for name, spec in (classifiers or {}).items()
        }
        # running sum of the batch-mean matching weights, (num_blocks, )
        self.matching_weight_sum: Optional[Tensor] = None
        self.matching_weight_count: Union[int, Tensor] = 0
        self._register_load_state_dict_pre_hook(map_legacy_keys)

    def build_temporal_mean(self, cfg: Optional[dict]) -> None:
        """The averaged model of the peers (``model.temporal_mean``)."""
        self.temporal_mean = None
        self.test_with_temporal_mean = self.temporal_mean_own_buffers = False
        if cfg is not None:
            cfg = dict(cfg)
            self.test_with_temporal_mean = cfg.pop('test', False)
            self.temporal_mean_own_buffers = cfg.pop('own_buffers', False)
            self.temporal_mean = MODELS.build(
                cfg, default_args=dict(model=self.peers))
        elif self.teachers.reads('temporal_mean'):
            raise ValueError("A teacher reads source='temporal_mean': set "
                             '`model.temporal_mean`.')

    def init_weights(self) -> None:
        """Each part's ``init_cfg``, then ``head_init``; the temporal mean
        starts at the initialised peers."""
        super().init_weights()
        if self.head_init == 'reference':
            self.peers.init_as_reference()
        if self.temporal_mean is not None:
            self.temporal_mean.module.load_state_dict(self.peers.state_dict())

    def ramp_factor(self, term: str) -> float:
        """The current ramp-up factor of a loss term (1 unramped)."""
        index = self.ramp_of_term.get(term)
        return 1. if index is None else self.loss_ramps[index].factor

    def ramp_factors(self, terms: Sequence[str]) -> Dict[str, float]:
        """:meth:`ramp_factor` of each term."""
        return {term: self.ramp_factor(term) for term in terms}

    @torch.compiler.disable
    def ramp_weights(self) -> Dict[str, Tensor]:
        """:meth:`ramp_factor` of each ramped term as a 0-dim tensor of
        the peers' dtype. Eager under ``torch.compile``: the compiled step
        gets the factor as an input, where a Python number would be a
        guarded constant, recompiled at each new value (every epoch of a
        ramp; after 8, Dynamo would leave the step eager)."""
        dtype = next(self.peers.parameters()).dtype
        return {
            term: torch.tensor(self.ramp_factor(term), dtype=dtype)
            for term in self.ramp_of_term
        }

    # ------------------------------------------------------------ forward
    def forward(self,
                inputs: Union[Tensor, List[Tensor]],
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """``tensor``: :class:`PeerOutputs` with the terms' embeddings;
        ``loss``: the losses; ``step``: the losses and the post-update
        steps of this batch (:meth:`train_step`); ``predict``: samples."""
        if mode == 'tensor':
            return self.features(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'step':
            return self.step_losses(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def features(self, inputs: Union[Tensor, List[Tensor]]) -> PeerOutputs:
        """The peers' outputs and each term's embeddings of them."""
        outputs = self.peers(inputs)
        outputs.embeddings = {
            name: term(outputs.feats_by_stage())
            for name, term in self.terms.items()
        }
        return outputs

    def loss(self, inputs: Union[Tensor, List[Tensor]],
             data_samples: list) -> Dict[str, Tensor]:
        """Every loss of the batch (:meth:`step_losses`)."""
        return self.step_losses(inputs, data_samples)[0]

    def step_losses(self, inputs: Union[Tensor, List[Tensor]],
                    data_samples: list
                    ) -> Tuple[Dict[str, Tensor], List[PostUpdate]]:
        """Every loss of the batch and the post-update steps it leaves
        (the terms' bank writes)."""
        ramps = self.ramp_weights()
        outputs = self.features(inputs)
        labels = torch.cat([s.gt_label for s in data_samples]).to(
            outputs.logits[0].device)
        outputs.labels = labels
        averaged = None
        if self.temporal_mean is not None:
            with torch.no_grad():
                averaged = self.temporal_mean.module(inputs)
            averaged.labels = labels
        losses = self.ce_losses(outputs, labels)
        targets = self.teachers.targets(outputs, averaged)
        losses.update(self.teachers.ce_losses(targets, labels, self.peers))
        losses.update(
            self.distillation(outputs, targets,
                              _factors(ramps, self.distillation.names)))
        weights = None if self.meta_net is None \
            else self.matching_weights(outputs)
        updates = []
        for name, term in self.terms.items():
            target = term.target(data_samples, labels)
            embeddings = outputs.embeddings[name]
            losses.update({
                f'{name}.{k}': v
                for k, v in term.loss(embeddings, target, weights,
                                      _factors(ramps, term.names)).items()
            })
            update = term.bank_update(embeddings, target)
            if update is not None:
                updates.append(update)
        return losses, updates


    def ce_losses(self, outputs: PeerOutputs,
                  labels: Tensor) -> Dict[str, Tensor]:
        """w_ce CE of every stage of every peer (the peer head's loss)."""
        losses = {}
        for p, stages in enumerate(outputs.logits_by_stage()):
            loss_module = self.peers.head(p).loss_module
            for s, logits in enumerate(stages):
                key = f'peer{p}.loss_ce' if s == len(stages) - 1 \
                    else f'peer{p}.s{s + 1}.loss_ce'
                losses[key] = self.ce_weight * loss_module(logits, labels)
        return losses

    @torch.no_grad()
    def matching_weights(self, outputs: PeerOutputs) -> Tensor:
        """The meta-network's block weights (num_blocks, B), added to the
        running mean :meth:`mean_matching_weights` reports."""
        weights = self.meta_net(outputs.feats_by_stage())
        batch_mean = weights.mean(1)
        if self.matching_weight_sum is None:
            self.matching_weight_sum = torch.zeros_like(batch_mean)
            # a tensor: an int would recompile a compiled step every batch
            self.matching_weight_count = batch_mean.new_zeros(())
        self.matching_weight_sum += batch_mean
        self.matching_weight_count += 1
        return weights

    # --------------------------------------------------------------- train
    def train_step(self,
                   data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict],
                   run_forward: Optional[Callable] = None
                   ) -> Dict[str, Tensor]:
        """The update of peers, teachers and terms, then the post-update
        steps: the terms' bank writes, the temporal mean and, when due,
        the meta step.

        Args:
            data (dict | tuple | list): A batch from the dataloader.
            optim_wrapper (OptimWrapper | OptimWrapperDict): ``cohort`` (and
                ``meta`` with a meta-network).
            run_forward (Callable, optional): ``run_forward(data,
                mode='step')``; :class:`CohortDistributedDataParallel` passes
                its own, so that DDP synchronises the gradients. Defaults to
                this model's.

        Returns:
            dict[str, Tensor]: Logged losses, ramps and post-update values.
        """
        run_forward = run_forward or self._run_forward
        wrapper, meta_wrapper = self.optim_wrappers(optim_wrapper)
        with wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses, updates = run_forward(data, mode='step')
        parsed_losses, log_vars = self.parse_losses(losses)
        log_vars.update({
            f'ramp/{term}': weight
            for term, weight in self.ramp_weights().items()
        })
        wrapper.update_params(parsed_losses)
        for update in updates:
            log_vars.update(update())
        if self.temporal_mean is not None:
            self.update_temporal_mean()
        if self.meta_step is not None and loop_progress(
                BATCH_IDX, 'The meta step (`model.meta`)'
        ) % self.meta_step.interval == 0:
            log_vars.update(
                self.meta_update(data['inputs'], data['data_samples'],
                                 wrapper, meta_wrapper))
        return log_vars

    @torch.compiler.disable
    def update_temporal_mean(self) -> None:
        """Average the peers' parameters into the temporal mean; its
        buffers (BN statistics) are the peers' (MMEngine's default) or, with
        ``own_buffers``, those its own train-mode forward keeps (PCL's
        re-implementation). Eager under ``torch.compile``: MMEngine's
        ``avg_func`` reads ``steps.item()``, a graph break per parameter
        whose resumed frames recompile for each parameter shape."""
        buffers = list(self.temporal_mean.module.buffers())
        saved = [b.clone() for b in buffers] \
            if self.temporal_mean_own_buffers else []
        self.temporal_mean.update_parameters(self.peers)
        for buffer, own in zip(buffers, saved):
            buffer.copy_(own)

    @torch.compiler.disable
    def meta_update(self, inputs: Tensor, data_samples: list,
                    wrapper: OptimWrapper,
                    meta_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """One meta step (:class:`MetaStep`) on this batch, after the
        normal update (:func:`cohort_meta_problem`). It runs eagerly under
        ``torch.compile``: its second-order replay is outside what compiled
        autograd supports, and it runs every ``interval`` steps.

        Returns:
            dict[str, Tensor]: ``meta/lr``, ``meta/outer_ce``,
            ``meta/hypergrad_norm``, ``meta/time``.
        """
        start = time.perf_counter()
        problem = cohort_meta_problem(self, inputs, data_samples, wrapper)
        try:
            stats = self.meta_step(problem, meta_wrapper)
        except torch.OutOfMemoryError as error:
            raise RuntimeError(
                'The meta step (model.meta) ran out of memory at batch size '
                f'{len(data_samples)} on this device; it needs about twice '
                "a normal step's activation memory: lower the batch size "
                '(train_dataloader.batch_size) or use a device with more '
                'memory.') from error
        stats['meta/lr'] = torch.tensor(wrapper.get_lr()['lr'][0])
        stats['meta/time'] = torch.tensor(time.perf_counter() - start)
        return stats

    def optim_wrappers(
        self, optim_wrapper: Union[OptimWrapper, OptimWrapperDict]
    ) -> Tuple[OptimWrapper, Optional[OptimWrapper]]:
        """The wrappers of the trained parts (``cohort``) and of the
        meta-network (``meta``, None without one)."""
        has_meta = self.meta_net is not None
        expected = {'cohort', 'meta'} if has_meta else {'cohort'}
        if isinstance(optim_wrapper, OptimWrapperDict):
            if set(optim_wrapper.keys()) != expected:
                raise KeyError(f'`optim_wrapper` must hold {sorted(expected)}'
                               f', got {sorted(optim_wrapper.keys())}.')
            meta = optim_wrapper['meta'] if has_meta else None
            return optim_wrapper['cohort'], meta
        if has_meta:
            raise TypeError('`model.meta` needs two optimizers: use '
                            "optim_wrapper=dict(constructor='Cohort"
                            "OptimWrapperConstructor', cohort=..., meta=...).")
        return optim_wrapper, None

    # ---------------------------------------- interfaces (interfaces.py)
    def mean_matching_weights(self) -> Optional[MatchingWeights]:
        """Mean layer-matching weight of every block over the batches
        since the last call, which starts a new mean; None without a
        meta-network or a batch since."""
        if self.matching_weight_sum is None or self.matching_weight_count == 0:
            return None
        mean = (self.matching_weight_sum / self.matching_weight_count).cpu()
        self.matching_weight_sum = None
        self.matching_weight_count = 0
        return MatchingWeights(self.meta_net.num_stages, mean)

    def meta_module(self) -> Optional[LayerMatchingWeights]:
        """The meta-network phi (``model.meta``), None without one."""
        return self.meta_net

    def bank_rows(self) -> Optional[int]:
        """Rows of each memory bank, None with no term keeping banks."""
        rows = {term.bank_rows() for term in self.terms.values()} - {None}
        return rows.pop() if rows else None

    def ddp_ignored_names(self) -> List[str]:
        """The meta-network's parameters, which the loss forward does not
        differentiate (the meta step all-reduces their hypergradient), and
        the terms' memory banks (written from every rank's embeddings on
        every rank)."""
        ignored = {id(b) for t in self.terms.values()
                   for b in t.named_banks().values()}
        if self.meta_net is not None:
            ignored |= {id(p) for p in self.meta_net.parameters()}
        named = [*self.named_parameters(), *self.named_buffers()]
        return [n for n, t in named if id(t) in ignored]


def _factors(ramps: Dict[str, Tensor],
             terms: Sequence[str]) -> Dict[str, Union[float, Tensor]]:
    """Each term's ramp factor from :meth:`CohortDistiller.ramp_weights`
    (1 unramped)."""
    return {term: ramps.get(term, 1.) for term in terms}
