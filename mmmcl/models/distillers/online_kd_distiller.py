"""Online knowledge distillation among peers: targets -> logit KD."""
import inspect
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel, ModuleDict
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor

from mmmcl.registry import MODELS
from ..losses import build_ramps
from ..utils import PeerOutputs, check_head_init, pytorch_default_linear
from .cohort_members import with_num_classes

PEERS = 'peers'
SOURCES = ('online', 'temporal_mean')


@MODELS.register_module()
class OnlineKDDistiller(BaseModel):
    r"""Peers trained together, each mimicking targets built from the group.

    ONE, CL-ILR, OKDDip, KDCL, PCL and FFL are configurations of it:
    ``peers`` (independent classifiers or a trunk split into branches)
    give every peer's map, feature and logits; ``teachers`` build targets
    from them (a mean, a gate, attention, a fusion module, MinLogit); each
    ``distill`` entry makes students mimic a teacher with ``kd_loss``. The
    step's loss is

    .. math::
        \sum_p w_{ce} \mathrm{CE}(z_p, y) + \sum_t w_t \mathrm{CE}(z_t, y)
        + \sum_d r_d(t)\, w_d \sum_{s} \mathrm{KD}(z_s, x_{d,s})

    with the ramp :math:`r_d` of ``loss_ramp`` (1 without one). Prediction:
    every peer's softmax (``member_scores``) and their mean.

    Args:
        peers (dict): ``BranchedClassifier`` or ``IndependentPeers`` config;
            heads get ``num_classes`` if they name none. A peer's CE is its
            head's ``loss_module`` (so its label smoothing applies), a
            teacher's CE that of the first peer the teacher reads.
        teachers (dict[str, dict]): Name -> ``dict(target=..., peers=None,
            source='online', ce_weight=0.)``: the target config, the peer
            indices it reads (all for None), ``'online'`` or
            ``'temporal_mean'`` outputs, and the weight of its own CE
            (trainable ensembles: ONE's gate, FFL's fusion, PCL's).
        distill (Sequence[dict]): ``dict(teacher=NAME, students='peers',
            weight=1., detach=True)``; ``students`` is ``'peers'`` (those
            the teacher reads), a list of peer indices or another teacher's
            name. A teacher giving one target per peer pairs them up (a list
            of targets for a peer: the mean of their KD terms). The
            term is ``kd_<teacher>``, ramped by ``loss_ramp``.
        kd_loss (dict): Defaults to ``dict(type='LogitKDLoss',
            temperature=3.0)``.
        ce_weight (float): w_ce of the peers' CE. Defaults to 1.
        temporal_mean (dict, optional): An MMEngine averaged-model config
            (e.g. ``dict(type='ExponentialMovingAverage', momentum=0.001)``)
            of the peers, updated after every step, for teachers with
            ``source='temporal_mean'`` (PCL) and, with ``test=True`` in
            it, for prediction; ``own_buffers=True`` in it keeps the BN
            statistics of its own forward instead of copying the peers'.
            Defaults to None.
        loss_ramp (dict | list[dict], optional): See
            :class:`LossWeightRamp`. Defaults to None.
        classifiers (dict[str, dict], optional): Named classifiers measured
            beside every peer and the mean-softmax ensemble, the ones a
            paper reports: name -> ``dict(teacher=NAME)`` (a teacher's own
            logits: ONE's gate, FFL's fusion), ``dict(peer=P)`` (one peer:
            OKDDip's leader) or ``dict(source='temporal_mean', peer=None)``
            (the temporal mean's peer P, or the mean softmax of all its
            peers: PCL). Predicted samples carry their softmax scores in
            ``classifier_scores``; :class:`CohortAccuracy` reports
            ``{name}/accuracy/top{k}``. Defaults to None.
        num_classes (int, optional): Defaults to the data preprocessor's.
        head_init (str): ``'mmpretrain'`` keeps each part's own
            initialisation (a ``LinearClsHead``: Normal(0, 0.01));
            ``'reference'`` gives every Linear layer of the peers PyTorch's
            default init, as the zoo's reference codes leave them. Defaults
            to ``'mmpretrain'``.
        data_preprocessor (dict, optional): Defaults to mmpretrain's
            ``ClsDataPreprocessor``; multi-view inputs need
            ``SelfSupDataPreprocessor``.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 peers: dict,
                 teachers: Optional[Dict[str, dict]] = None,
                 distill: Sequence[dict] = (),
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
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if num_classes is None and isinstance(data_preprocessor, dict):
            num_classes = data_preprocessor.get('num_classes')
        if num_classes is None:
            raise ValueError('`model.num_classes` is needed (or '
                             '`data_preprocessor.num_classes`).')
        self.num_classes = num_classes
        self.head_init = check_head_init(head_init)
        self.peers = MODELS.build(self._with_classes(peers))
        self.ce_weight = ce_weight
        self.kd_loss = MODELS.build(
            kd_loss or dict(type='LogitKDLoss', temperature=3.0))
        self.teacher_specs: Dict[str, dict] = {}
        self.teachers = ModuleDict()
        for name, spec in (teachers or {}).items():
            self.teacher_specs[name] = self._check_teacher(name, spec)
            self.teachers[name] = MODELS.build(
                self._with_classes(spec['target'], target=True))
        self.distill = [
            self._check_distill(i, d) for i, d in enumerate(distill)
        ]
        terms = [d['term'] for d in self.distill]
        if len(set(terms)) != len(terms):
            raise ValueError('`model.distill` names a teacher twice; give '
                             f'each teacher one entry: {terms}.')
        self.loss_ramps, self.ramp_of_term = build_ramps(
            loss_ramp, [d['term'] for d in self.distill])
        self.temporal_mean = None
        self.test_with_temporal_mean = False
        self.temporal_mean_own_buffers = False
        if temporal_mean is not None:
            temporal_mean = dict(temporal_mean)
            self.test_with_temporal_mean = temporal_mean.pop('test', False)
            self.temporal_mean_own_buffers = temporal_mean.pop(
                'own_buffers', False)
            self.temporal_mean = MODELS.build(
                temporal_mean, default_args=dict(model=self.peers))
        elif any(s['source'] == 'temporal_mean'
                 for s in self.teacher_specs.values()):
            raise ValueError("A teacher reads source='temporal_mean': set "
                             '`model.temporal_mean`.')
        self.classifiers = {
            name: self._check_classifier(name, spec)
            for name, spec in (classifiers or {}).items()
        }

    # ------------------------------------------------------- building
    def _with_classes(self, cfg: dict, target: bool = False) -> dict:
        """``cfg`` with ``num_classes`` filled into its heads (peers) or,
        for a target that takes it, into itself."""
        cfg = dict(cfg)
        if target:
            cls = MODELS.get(cfg['type'])
            if cls is not None and 'num_classes' in inspect.signature(
                    cls).parameters:
                cfg.setdefault('num_classes', self.num_classes)
            return cfg
        if 'classifier' in cfg:
            cfg['classifier'] = with_num_classes(cfg['classifier'],
                                                 self.num_classes)
        if 'members' in cfg:
            cfg['members'] = [
                with_num_classes(m, self.num_classes) for m in cfg['members']
            ]
        return cfg

    @staticmethod
    def _check_teacher(name: str, spec: dict) -> dict:
        field = f'`model.teachers.{name}'
        unknown = set(spec) - {'target', 'peers', 'source', 'ce_weight'}
        if 'target' not in spec or unknown:
            raise ValueError(f'{field}` must be dict(target=..., peers=None, '
                             f"source='online', ce_weight=0.), got keys "
                             f'{sorted(spec)}.')
        spec = {**dict(peers=None, source='online', ce_weight=0.), **spec}
        if spec['source'] not in SOURCES:
            raise ValueError(f'{field}.source` must be one of {SOURCES}, '
                             f'got {spec["source"]!r}.')
        return spec

    def _check_classifier(self, name: str, spec: dict) -> dict:
        field = f'`model.classifiers[{name!r}]'
        spec = {**dict(teacher=None, peer=None, source='online'), **spec}
        if set(spec) != {'teacher', 'peer', 'source'}:
            raise ValueError(f'{field}` must be dict(teacher=NAME), '
                             "dict(peer=P) or dict(source='temporal_mean', "
                             f'peer=None), got keys {sorted(spec)}.')
        if spec['teacher'] is not None:
            if spec['teacher'] not in self.teacher_specs:
                raise ValueError(f"{field}.teacher` is {spec['teacher']!r}; "
                                 f'teachers: {sorted(self.teacher_specs)}.')
        elif spec['source'] not in SOURCES:
            raise ValueError(f'{field}.source` must be one of {SOURCES}, '
                             f"got {spec['source']!r}.")
        elif spec['source'] == 'temporal_mean' and self.temporal_mean is None:
            raise ValueError(f"{field}` reads source='temporal_mean': set "
                             '`model.temporal_mean`.')
        elif spec['source'] == 'online' and spec['peer'] is None:
            raise ValueError(f'{field}` names no teacher and no peer; the '
                             'online peers\' mean is `ensemble` already.')
        return spec

    def _check_distill(self, index: int, entry: dict) -> dict:
        field = f'`model.distill[{index}]'
        entry = {**dict(students=PEERS, weight=1., detach=True), **entry}
        teacher, students = entry.get('teacher'), entry['students']
        if teacher not in self.teacher_specs:
            raise ValueError(f'{field}.teacher` is {teacher!r}; teachers: '
                             f'{sorted(self.teacher_specs)}.')
        if isinstance(students, str) and students != PEERS and (
                students not in self.teacher_specs or students == teacher):
            raise ValueError(f"{field}.students` must be 'peers', peer "
                             'indices or another teacher, got '
                             f'{students!r}.')
        entry['term'] = f'kd_{teacher}'
        return entry

    def init_weights(self) -> None:
        """Initialise (``head_init``), then start the temporal mean at
        the initialised peers (it copied them before, at construction)."""
        super().init_weights()
        if self.head_init == 'reference':
            pytorch_default_linear(self.peers)
        if self.temporal_mean is not None:
            self.temporal_mean.module.load_state_dict(self.peers.state_dict())

    # ------------------------------------------------------ ramps
    def ramp_factor(self, term: str) -> float:
        """The current ramp-up factor of a distillation term (1 unramped)."""
        index = self.ramp_of_term.get(term)
        return 1. if index is None else self.loss_ramps[index].factor

    # ------------------------------------------------------- forward
    def forward(self,
                inputs: Union[Tensor, List[Tensor]],
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """``tensor``: :class:`PeerOutputs`; ``loss``: dict of losses;
        ``predict``: samples."""
        if mode == 'tensor':
            return self.peers(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def teacher_logits(
        self, outputs: PeerOutputs, averaged: Optional[PeerOutputs]
    ) -> Dict[str, Union[Tensor, List[Tensor]]]:
        """Every teacher's target(s), in config order."""
        return {
            name: self.teacher_target(name, outputs, averaged)
            for name in self.teacher_specs
        }

    def teacher_target(self, name: str, outputs: PeerOutputs,
                       averaged: Optional[PeerOutputs]
                       ) -> Union[Tensor, List[Tensor]]:
        """Teacher ``name``'s target(s) from the peers it reads, online or
        temporal-mean."""
        spec = self.teacher_specs[name]
        source = averaged if spec['source'] == 'temporal_mean' else outputs
        return self.teachers[name](source.select(spec['peers']))

    def loss(self, inputs: Union[Tensor, List[Tensor]],
             data_samples: list) -> Dict[str, Tensor]:
        """Keyed ``peer{p}.loss_ce``, ``{teacher}.loss_ce`` and
        ``{student}.loss_kd_{teacher}`` (weighted and ramped)."""
        outputs = self.peers(inputs)
        labels = torch.cat([s.gt_label for s in data_samples
                            ]).to(outputs.logits[0].device)
        outputs.labels = labels
        averaged = None
        if self.temporal_mean is not None:
            with torch.no_grad():
                averaged = self.temporal_mean.module(inputs)
            averaged.labels = labels
        losses = {
            f'peer{p}.loss_ce':
            self.ce_weight * self.peers.head(p).loss_module(z, labels)
            for p, z in enumerate(outputs.logits)
        }
        targets = self.teacher_logits(outputs, averaged)
        for name, spec in self.teacher_specs.items():
            if spec['ce_weight']:
                first = spec['peers'][0] if spec['peers'] else 0
                losses[f'{name}.loss_ce'] = spec['ce_weight'] * \
                    self.peers.head(first).loss_module(
                        self._single(name, targets[name]), labels)
        for entry in self.distill:
            losses.update(self.distill_losses(entry, outputs, targets))
        return losses

    def distill_losses(
            self, entry: dict, outputs: PeerOutputs,
            targets: Dict[str, Union[Tensor,
                                     List[Tensor]]]) -> Dict[str, Tensor]:
        """The KD terms of one ``distill`` entry, one per student."""
        teacher = entry['teacher']
        students = entry['students']
        if isinstance(students, str) and students != PEERS:
            named = [(students, self._single(students, targets[students]))]
        else:
            if students == PEERS:
                students = self.teacher_specs[teacher]['peers'] or range(
                    len(outputs))
            named = [(f'peer{p}', outputs.logits[p]) for p in students]
        target = targets[teacher]
        if isinstance(target, Tensor):
            target = [target] * len(named)
        if len(target) != len(named):
            raise ValueError(f'Teacher {teacher!r} gives {len(target)} '
                             f'targets for {len(named)} students.')
        factor = self.ramp_factor(entry['term']) * entry['weight']
        return {
            f'{name}.loss_{entry["term"]}':
            factor * self._mean_kd(z, t, entry['detach'])
            for (name, z), t in zip(named, target)
        }

    def _mean_kd(self, student: Tensor, target: Union[Tensor, List[Tensor]],
                 detach: bool) -> Tensor:
        """KD to a target (B, C), or the mean KD to several."""
        targets = [target] if isinstance(target, Tensor) else target
        return sum(
            self.kd_loss(student, t.detach() if detach else t)
            for t in targets) / len(targets)

    @staticmethod
    def _single(name: str, logits: Union[Tensor, List[Tensor]]) -> Tensor:
        if not isinstance(logits, Tensor):
            raise TypeError(f'Teacher {name!r} gives one target per peer: it '
                            'has no logits of its own to train or distil.')
        return logits

    def predict(self,
                inputs: Union[Tensor, List[Tensor]],
                data_samples: Optional[list] = None) -> list:
        """Every peer's softmax scores (``member_scores``, (N, C) a sample)
        and their mean (``pred_score``), the temporal mean's peers with
        ``temporal_mean.test``; the named classifiers' scores
        (``classifier_scores``, name -> (C, ))."""
        sources = {self.classifier_source(spec)
                   for spec in self.classifiers.values()}
        sources.add('temporal_mean' if self.test_with_temporal_mean
                    else 'online')
        online = self.peers(inputs) if 'online' in sources else None
        averaged = self.temporal_mean.module(inputs) \
            if 'temporal_mean' in sources else None
        peers = averaged if self.test_with_temporal_mean else online
        scores = torch.stack([F.softmax(z, dim=1) for z in peers.logits],
                             dim=1)
        named = self.classifier_scores(online, averaged)
        if data_samples is None:
            from mmpretrain.structures import DataSample
            data_samples = [DataSample() for _ in range(scores.shape[0])]
        for i, (sample, score) in enumerate(zip(data_samples, scores)):
            sample.set_pred_score(score.mean(0))
            sample.set_field(score, 'member_scores', field_type='data')
            if named:
                sample.set_field({n: s[i] for n, s in named.items()},
                                 'classifier_scores', field_type='data')
        return data_samples

    def classifier_source(self, spec: dict) -> str:
        """``'online'`` or ``'temporal_mean'``: what a named classifier
        reads (a teacher's: that teacher's source)."""
        if spec['teacher'] is not None:
            return self.teacher_specs[spec['teacher']]['source']
        return spec['source']

    def classifier_scores(self, online: Optional[PeerOutputs],
                          averaged: Optional[PeerOutputs]
                          ) -> Dict[str, Tensor]:
        """Softmax scores (B, C) of each named classifier."""
        scores = {}
        for name, spec in self.classifiers.items():
            if spec['teacher'] is not None:
                logits = self._single(
                    spec['teacher'],
                    self.teacher_target(spec['teacher'], online, averaged))
                scores[name] = F.softmax(logits, dim=1)
                continue
            source = averaged if spec['source'] == 'temporal_mean' \
                else online
            peers = range(len(source)) if spec['peer'] is None \
                else [spec['peer']]
            scores[name] = torch.stack(
                [F.softmax(source.logits[p], dim=1) for p in peers]).mean(0)
        return scores

    # ---------------------------------------- interfaces (interfaces.py)
    def meta_module(self) -> None:
        """None: no meta step."""
        return None

    def mean_matching_weights(self) -> None:
        """None: no layer-matching weights."""
        return None

    def bank_rows(self) -> None:
        """None: no memory banks."""
        return None

    def ddp_ignored_names(self) -> List[str]:
        """None: DDP handles every parameter and buffer."""
        return []

    # --------------------------------------------------------- train
    def optim_wrappers(
        self, optim_wrapper: Union[OptimWrapper, OptimWrapperDict]
    ) -> Tuple[OptimWrapper, None]:
        """The one wrapper of every trained parameter (``cohort``)."""
        if isinstance(optim_wrapper, OptimWrapperDict):
            if set(optim_wrapper.keys()) != {'cohort'}:
                raise KeyError('`optim_wrapper` of an online-KD model holds '
                               f"'cohort' only, got {list(optim_wrapper)}.")
            return optim_wrapper['cohort'], None
        return optim_wrapper, None

    def train_step(
            self,
            data: Union[dict, tuple, list],
            optim_wrapper: Union[OptimWrapper, OptimWrapperDict],
            run_forward: Optional[Callable] = None) -> Dict[str, Tensor]:
        """One update of the peers and teachers, then of the temporal mean.

        Args:
            run_forward (Callable, optional): ``run_forward(data,
                mode='loss')``; :class:`CohortDistributedDataParallel` passes
                its own. Defaults to this model's.
        """
        wrapper, _ = self.optim_wrappers(optim_wrapper)
        run_forward = run_forward or self._run_forward
        with wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = run_forward(data, mode='loss')
        parsed_losses, log_vars = self.parse_losses(losses)
        for term in self.ramp_of_term:
            log_vars[f'ramp/{term}'] = torch.tensor(self.ramp_factor(term))
        wrapper.update_params(parsed_losses)
        if self.temporal_mean is not None:
            self.update_temporal_mean()
        return log_vars

    def update_temporal_mean(self) -> None:
        """Average the peers' parameters into the temporal mean; its
        buffers (BN statistics) are the peers' (MMEngine's default) or, with
        ``own_buffers``, those its own train-mode forward in :meth:`loss`
        keeps (PCL's re-implementation)."""
        buffers = list(self.temporal_mean.module.buffers())
        saved = [b.clone() for b in buffers] \
            if self.temporal_mean_own_buffers else []
        self.temporal_mean.update_parameters(self.peers)
        for buffer, own in zip(buffers, saved):
            buffer.copy_(own)
