from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric

from mmmcl.registry import METRICS


@METRICS.register_module()
class CohortAccuracy(BaseMetric):
    """Top-k accuracy of every cohort member and of the ensemble.

    Reads ``member_scores`` (M, C) of each predicted sample (softmax scores
    of each member, as :class:`CohortDistiller` predicts) and reports
    ``member{m}/accuracy/top{k}`` and ``ensemble/accuracy/top{k}``, the
    ensemble being the mean of the members' softmax scores; with
    ``classifier_scores`` (name -> (C, ), the classifiers a paper reports,
    see :class:`CohortDistiller`), also ``{name}/accuracy/top{k}``.
    Values in %, ordered: the named classifiers, the ensemble, the members
    (a ``CheckpointHook(save_best='auto')`` picks the first).

    Args:
        topk (Sequence[int]): The k of top-k. Defaults to (1, 5).
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to
            None.
    """
    default_prefix: Optional[str] = None

    def __init__(self,
                 topk: Sequence[int] = (1, 5),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'member_scores' not in sample:
                raise KeyError(
                    'CohortAccuracy needs `member_scores` in the predicted '
                    'samples (a CohortDistiller model); for a single '
                    "classifier use dict(type='Accuracy').")
            named = sample.get('classifier_scores', {})
            self.results.append(
                dict(
                    scores=sample['member_scores'].cpu(),
                    classifiers={n: s.cpu() for n, s in named.items()},
                    label=sample['gt_label'].cpu().view(-1)[0]))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        scores = torch.stack([r['scores'] for r in results])  # (N, M, C)
        labels = torch.stack([r['label'] for r in results])
        num_classes = scores.shape[-1]
        metrics = {}
        # the reported classifiers first: `save_best='auto'` picks the first
        named = [(name, torch.stack([r['classifiers'][name] for r in results]))
                 for name in results[0]['classifiers']]
        named.append(('ensemble', scores.mean(1)))
        named += [(f'member{m}', scores[:, m]) for m in range(scores.shape[1])]
        for name, score in named:
            for k in self.topk:
                top = score.topk(min(k, num_classes), dim=1).indices
                correct = (top == labels[:, None]).any(1).float().mean()
                metrics[f'{name}/accuracy/top{k}'] = correct.item() * 100
        return metrics
