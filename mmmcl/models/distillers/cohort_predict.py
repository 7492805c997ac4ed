"""What a cohort predicts: every peer, their mean and the named
classifiers a paper reports."""
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..utils import PeerOutputs


class CohortPredictMixin:
    """``predict`` of :class:`CohortDistiller` (its ``peers``,
    ``temporal_mean``, ``teachers`` and ``classifiers``)."""

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
        # auxiliary branches run only for a teacher that reads them
        stages = any(s['teacher'] is not None
                     for s in self.classifiers.values())
        online = self.peers(inputs, with_stages=stages) \
            if 'online' in sources else None
        averaged = self.temporal_mean.module(inputs, with_stages=stages) \
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
            return self.teachers.specs[spec['teacher']]['source']
        return spec['source']

    def classifier_scores(self, online: Optional[PeerOutputs],
                          averaged: Optional[PeerOutputs]
                          ) -> Dict[str, Tensor]:
        """Softmax scores (B, C) of each named classifier."""
        scores = {}
        for name, spec in self.classifiers.items():
            if spec['teacher'] is not None:
                logits = self.teachers.single(
                    spec['teacher'],
                    self.teachers.target(spec['teacher'], online, averaged))
                scores[name] = F.softmax(logits, dim=1)
                continue
            source = averaged if spec['source'] == 'temporal_mean' \
                else online
            peers = range(len(source)) if spec['peer'] is None \
                else [spec['peer']]
            scores[name] = torch.stack(
                [F.softmax(source.logits[p], dim=1) for p in peers]).mean(0)
        return scores
