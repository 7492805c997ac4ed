"""The classifiers each zoo paper reports, as named metrics."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from mmmcl.evaluation.metrics import CohortAccuracy
from mmmcl.registry import MODELS
from mmmcl.utils import register_all_modules

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
REPORTED = {
    'one/one_resnet20_1xb100-15e_mnist5k.py': 'one/branch0',
    'ffl/ffl_resnet20_1xb100-15e_mnist5k.py': 'ffl/fused',
    'okddip/okddip_resnet20_1xb100-15e_mnist5k.py': 'okddip/leader',
    'pcl/pcl_resnet20_1xb100-15e_mnist5k.py': 'pcl/temporal_mean',
}


@pytest.fixture(autouse=True)
def registered():
    register_all_modules()


def test_metric_equals_a_hand_computation():
    """3 samples, 2 members, 3 classes; the named classifier 'x/y' is right
    on samples 0 and 2 (and 1 in its top 2), the ensemble on 0 and 1,
    member 1 on 1 only."""
    member_scores = torch.tensor([
        [[.7, .2, .1], [.4, .5, .1]],
        [[.2, .5, .3], [.1, .8, .1]],
        [[.6, .3, .1], [.5, .4, .1]],
    ])
    named = torch.tensor([[.9, .05, .05], [.5, .4, .1], [.1, .1, .8]])
    labels = [0, 1, 2]
    metric = CohortAccuracy(topk=(1, 2))
    metric.process(None, [
        dict(member_scores=s, classifier_scores={'x/y': n},
             gt_label=torch.tensor([y]))
        for s, n, y in zip(member_scores, named, labels)
    ])
    result = metric.compute_metrics(metric.results)
    assert list(result)[0] == 'x/y/accuracy/top1'  # save_best='auto'
    assert result['x/y/accuracy/top1'] == pytest.approx(200 / 3)
    assert result['x/y/accuracy/top2'] == pytest.approx(100.)
    assert result['ensemble/accuracy/top1'] == pytest.approx(200 / 3)
    assert result['member0/accuracy/top1'] == pytest.approx(200 / 3)
    assert result['member1/accuracy/top1'] == pytest.approx(100 / 3)
    assert result['member1/accuracy/top2'] == pytest.approx(200 / 3)


def build(config: str):
    cfg = Config.fromfile(CONFIGS / config)
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def inputs_for(model, size=4):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(size, 3, 28, 28, generator=gen)
    return x


@pytest.mark.parametrize('config', sorted(REPORTED))
def test_predict_gives_the_reported_classifier(config):
    """The named scores equal the softmax of the part the paper reports,
    computed here from the model's modules."""
    model = build(config)
    x = inputs_for(model)
    with torch.no_grad():
        # the temporal mean starts as a copy: move the online peers away
        for p in model.peers.parameters():
            p.add_(0.05 * torch.randn_like(p))
        samples = model.predict(x)
        online = model.peers(x)
        name = REPORTED[config]
        if name == 'one/branch0':
            expected = F.softmax(online.logits[0], dim=1)
            gated = F.softmax(model.teachers['ensemble'](online), dim=1)
            torch.testing.assert_close(
                torch.stack([s.classifier_scores['one/gated_ensemble']
                             for s in samples]), gated)
        elif name == 'ffl/fused':
            expected = F.softmax(model.teachers['fusion'](online), dim=1)
        elif name == 'okddip/leader':
            expected = F.softmax(online.logits[3], dim=1)
        else:
            averaged = model.temporal_mean.module(x)
            expected = F.softmax(averaged.logits[0], dim=1)
    got = torch.stack([s.classifier_scores[name] for s in samples])
    torch.testing.assert_close(got, expected)
    assert list(samples[0].classifier_scores)[0] == name


def test_bad_classifier_specs():
    cfg = Config.fromfile(CONFIGS / 'one/one_resnet20_1xb100-15e_mnist5k.py')
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    for spec, match in [(dict(teacher='gate'), 'teachers'),
                        (dict(source='online'), 'no teacher'),
                        (dict(source='temporal_mean'), 'temporal_mean'),
                        (dict(leader=3), 'keys')]:
        model_cfg = cfg.model.copy()
        model_cfg['classifiers'] = {'one/x': spec}
        with pytest.raises(ValueError, match=match):
            MODELS.build(model_cfg)
