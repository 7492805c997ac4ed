"""MCL's CIFAR-100 configs against the authors' contrastive loss.

winycg/MCL (``losses/cifar_sup_mcl_loss.py``, ``SupMCL``; the run's
weights (alpha, gamma, beta, lambda) = (0.1, 1, 0.1, 1), tau 0.1, T 3 from
``scripts/train_cifar_mcl.sh`` / ``main_cifar.py``) counts each matrix once;
mmmcl's ``InBatchContrastLoss`` sums L-MCL's ordered blocks, so the MCL
configs rescale their weights. On the same float64 embeddings every weighted
term equals the authors', for 2 and 4 networks. Mutation check: the x4
config with ``vcl=0.05`` (the x2 value) fails.
"""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmmcl.registry import MODELS
from mmmcl.testing.mcl_reference import sup_mcl
from mmmcl.utils import register_all_modules

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
REFERENCE_WEIGHTS = dict(vcl=0.1, soft_vcl=1., icl=0.1, soft_icl=1.)


@pytest.mark.parametrize('config, members', [
    ('mcl/mcl_resnet32x2_1xb128-300e_cifar100.py', 2),
    ('mcl/mcl_resnet32x4_1xb128-300e_cifar100.py', 4),
])
def test_contrastive_terms_equal_the_authors(config, members):
    register_all_modules()
    cfg = Config.fromfile(CONFIGS / config)
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(cfg.model).double()
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(16) // 2  # 8 classes x 2, as the sampler gives
    embeddings = [
        F.normalize(torch.randn(16, 8, generator=gen, dtype=torch.float64),
                    dim=1) for _ in range(members)
    ]
    ours = model.terms.contrast.loss([[e] for e in embeddings], labels)
    theirs = dict(
        zip(('vcl', 'soft_vcl', 'icl', 'soft_icl'),
            sup_mcl(embeddings, labels, tau=0.1, kd_T=3.)))
    for term, value in theirs.items():
        torch.testing.assert_close(
            ours[f'loss_{term}'], REFERENCE_WEIGHTS[term] * value,
            rtol=1e-12, atol=0, msg=term)
