"""Students mimicking the teachers' logits (``model.distill``)."""
from typing import Dict, List, Optional, Sequence, Union

import torch.nn as nn
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import PeerOutputs
from .cohort_teachers import CohortTeachers

PEERS = 'peers'
MIMIC = ('paired', 'all')


def check_distill(index: int, entry: dict, teachers: Sequence[str]) -> dict:
    """``model.distill[index]`` with its defaults and its term's name,
    ``kd_<teacher>``."""
    field = f'`model.distill[{index}]'
    entry = {
        **dict(students=PEERS, weight=1., detach=True, mimic='paired'),
        **entry
    }
    teacher, students = entry.get('teacher'), entry['students']
    if teacher not in teachers:
        raise ValueError(f'{field}.teacher` is {teacher!r}; teachers: '
                         f'{sorted(teachers)}.')
    if isinstance(students, str) and students != PEERS and (
            students not in teachers or students == teacher):
        raise ValueError(f"{field}.students` must be 'peers', peer "
                         f'indices or another teacher, got {students!r}.')
    if entry['mimic'] not in MIMIC:
        raise ValueError(f'{field}.mimic` must be one of {MIMIC}, got '
                         f'{entry["mimic"]!r}.')
    entry['term'] = f'kd_{teacher}'
    return entry


class LogitDistillation(nn.Module):
    r"""The ``distill`` entries: students mimic a teacher with ``kd_loss``,
    :math:`r_d w_d \sum_s \mathrm{KD}(z_s, x_{d,s})`.

    An entry is ``dict(teacher=NAME, students='peers', weight=1.,
    detach=True, mimic='paired')``; ``students`` is ``'peers'`` (those the
    teacher reads), peer indices or another teacher. ``'paired'``: the
    teacher's one target for every student, or target p for peer p (a list
    of targets for a peer: the mean of its KD terms); ``'all'``: every
    student mimics every target, the KD terms summed (L-MCL's logit KD).
    Its term is ``kd_<teacher>``, which ``loss_ramp`` may ramp.

    Args:
        distill (Sequence[dict]): The entries.
        teachers (CohortTeachers): The teachers they name.
        kd_loss (dict, optional): Defaults to ``dict(type='LogitKDLoss',
            temperature=3.0)``.
    """

    def __init__(self,
                 distill: Sequence[dict],
                 teachers: CohortTeachers,
                 kd_loss: Optional[dict] = None) -> None:
        super().__init__()
        self.kd_loss = MODELS.build(
            kd_loss or dict(type='LogitKDLoss', temperature=3.0))
        self.entries = [
            check_distill(i, d, list(teachers.specs))
            for i, d in enumerate(distill)
        ]
        self.teacher_peers = {n: s['peers'] for n, s in teachers.specs.items()}

    @property
    def names(self) -> List[str]:
        """The entries' terms, ``kd_<teacher>``."""
        return [entry['term'] for entry in self.entries]

    def forward(self, outputs: PeerOutputs,
                targets: Dict[str, Union[Tensor, list]],
                factors: Dict[str, Union[float, Tensor]]
                ) -> Dict[str, Tensor]:
        """``{student}.loss_kd_{teacher}`` of every entry, times its weight
        and its ramp factor in ``factors``."""
        losses = {}
        for entry in self.entries:
            losses.update(self.entry_losses(entry, outputs, targets,
                                            factors[entry['term']]))
        return losses

    def entry_losses(self, entry: dict, outputs: PeerOutputs,
                     targets: Dict[str, Union[Tensor, list]],
                     factor: float) -> Dict[str, Tensor]:
        """The KD terms of one entry, one per student."""
        teacher, students = entry['teacher'], entry['students']
        if isinstance(students, str) and students != PEERS:
            named = [(students,
                      CohortTeachers.single(students, targets[students]))]
        else:
            if students == PEERS:
                students = self.teacher_peers[teacher] or range(len(outputs))
            named = [(f'peer{p}', outputs.logits[p]) for p in students]
        target = targets[teacher]
        if isinstance(target, Tensor) or entry['mimic'] == 'all':
            target = [target] * len(named)
        if len(target) != len(named):
            raise ValueError(f'Teacher {teacher!r} gives {len(target)} '
                             f'targets for {len(named)} students.')
        factor = factor * entry['weight']
        return {
            f'{name}.loss_{entry["term"]}':
            factor * self.kd_to(z, t, entry['detach'], entry['mimic'])
            for (name, z), t in zip(named, target)
        }

    def kd_to(self, student: Tensor, target: Union[Tensor, List[Tensor]],
              detach: bool, mimic: str) -> Tensor:
        """KD to a target (B, C); to several: their mean, or with
        ``mimic='all'`` their sum."""
        targets = [target] if isinstance(target, Tensor) else target
        kd = sum(
            self.kd_loss(student, t.detach() if detach else t)
            for t in targets)
        return kd if mimic == 'all' else kd / len(targets)
