"""Each online-KD method's training loss against a transcription of its
reference's (``mmmcl/testing/online_kd_reference.py``): the CIFAR-100 config's
model, float64, one batch half-way up the ramp; the total loss and its
gradients, on the same forward outputs and module weights. A head's label
smoothing sets its peer's CE (and a teacher's), against a hand computation.

With BN in train mode (batch statistics) and nothing random in the forward,
``model.peers(inputs)`` gives the outputs ``model.loss`` computed from.
"""
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.structures import DataSample
from torch import Tensor

from mmmcl.models.distillers import CohortDistiller
from mmmcl.registry import MODELS
from mmmcl.testing import online_kd_reference as ref
from mmmcl.testing import train_progress
from mmmcl.utils import register_all_modules

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
B, NUM_CLASSES = 6, 100
EPOCH = 50
# The references' ramp: sigmoid over --consistency_rampup (--length) = 80
# epochs, of the 0-based epoch; about 0.49 at EPOCH.
RAMP = ref.sigmoid_rampup(EPOCH, 80)
TRUNK_CONV = 'peers.classifier.backbone.stem.0.weight'


@pytest.fixture(autouse=True)
def float64():
    register_all_modules()
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(default)


@pytest.fixture(autouse=True)
def at_epoch():
    """The loop at epoch ``EPOCH``, which the ramps read."""
    with train_progress(epoch=EPOCH):
        yield


def build(config: str, options: Optional[dict] = None) -> CohortDistiller:
    """The config's model (after ``options``, as ``--cfg-options`` gives
    them) in train mode."""
    cfg = Config.fromfile(CONFIGS / config)
    cfg.merge_from_dict(options or {})
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    return MODELS.build(cfg.model).train()


def batch(num_views: int = 0
          ) -> Tuple[Union[Tensor, List[Tensor]], Tensor, List[DataSample]]:
    """Images (or ``num_views`` views of them), labels and samples."""
    gen = torch.Generator().manual_seed(1)
    labels = torch.randint(0, NUM_CLASSES, (B, ), generator=gen)
    views = [
        torch.randn(B, 3, 32, 32, generator=gen)
        for _ in range(max(num_views, 1))
    ]
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    return (views if num_views else views[0]), labels, samples


def check(model: CohortDistiller, inputs: Union[Tensor, List[Tensor]],
          samples: List[DataSample], reference: Callable[[], Tensor],
          params: Sequence[str]) -> None:
    """Our total loss equals ``reference()``, and so do the gradients of
    ``params``."""
    ours = sum(model.loss(inputs, samples).values())
    theirs = reference()
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=0)
    named = dict(model.named_parameters())
    tensors = [named[p] for p in params]
    grads = [
        torch.autograd.grad(
            loss, tensors, allow_unused=True, materialize_grads=True)
        for loss in (ours, theirs)
    ]
    for name, a, b in zip(params, *grads):
        assert b.abs().sum() > 0, name
        torch.testing.assert_close(
            a, b, rtol=1e-9, atol=1e-13, msg=lambda m: f'{name}: {m}')


def test_one():
    model = build('one/one_resnet32_1xb128-300e_cifar100.py')
    inputs, labels, samples = batch()
    gate = model.teachers.ensemble

    def reference() -> Tensor:
        out = model.peers(inputs)
        return ref.one_loss(out.trunk[0], out.logits, labels, RAMP,
                            gate.fc.weight, gate.fc.bias, gate.bn)

    check(model, inputs, samples, reference, [
        'peers.leaf_heads.1.fc.weight', TRUNK_CONV,
        'teachers.ensemble.fc.weight'
    ])


def test_cl_ilr():
    model = build('cl_ilr/cl-ilr_resnet32_1xb128-300e_cifar100.py')
    inputs, labels, samples = batch()

    def reference() -> Tensor:
        return ref.cl_ilr_loss(model.peers(inputs).logits, labels)

    check(model, inputs, samples, reference,
          ['peers.leaf_heads.1_1.fc.weight', TRUNK_CONV])


def test_okddip():
    model = build('okddip/okddip_resnet32_1xb128-300e_cifar100.py')
    inputs, labels, samples = batch()
    attention = model.teachers.attention

    def reference() -> Tensor:
        out = model.peers(inputs)
        return ref.okddip_loss(out.feats, out.logits, labels, RAMP,
                               attention.query.weight, attention.key.weight)

    # peer 0 also learns from the leader's live target
    check(model, inputs, samples, reference, [
        'peers.classifier.head.fc.weight', 'peers.leaf_heads.3.fc.weight',
        TRUNK_CONV, 'teachers.attention.query.weight'
    ])


def test_ffl():
    model = build('ffl/ffl_resnet32_1xb128-300e_cifar100.py')
    inputs, labels, samples = batch()
    fusion = model.teachers.fusion

    def reference() -> Tensor:
        out = model.peers(inputs)
        return ref.ffl_loss(out.maps, out.logits, labels, RAMP,
                            fusion.depthwise.conv.weight, fusion.depthwise.bn,
                            fusion.pointwise.conv.weight, fusion.pointwise.bn,
                            fusion.fc.weight, fusion.fc.bias)

    check(model, inputs, samples, reference, [
        'peers.leaf_heads.1.fc.weight', TRUNK_CONV,
        'teachers.fusion.fc.weight', 'teachers.fusion.depthwise.conv.weight'
    ])


def test_kdcl():
    model = build('kdcl/kdcl_resnet32x2_1xb128-300e_cifar100.py')
    inputs, labels, samples = batch(num_views=2)

    def reference() -> Tensor:
        return ref.kdcl_min_logit_loss(model.peers(inputs).logits, labels)

    check(model, inputs, samples, reference, [
        'peers.members.0.head.fc.weight',
        'peers.members.1.backbone.stem.0.weight'
    ])


def test_pcl():
    model = build('pcl/pcl_resnet32_1xb128-300e_cifar100.py')
    inputs, labels, samples = batch(num_views=3)
    mean_peers = model.temporal_mean.module
    with torch.no_grad():  # a temporal mean that lags the peers
        for p in mean_peers.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ensemble = model.teachers.ensemble

    def reference() -> Tensor:
        out = model.peers(inputs)
        with torch.no_grad():
            mean_logits = mean_peers(inputs).logits
        return ref.pcl_loss(out.feats, out.logits, mean_logits, labels, RAMP,
                            ensemble.fc.weight, ensemble.fc.bias)

    check(model, inputs, samples, reference, [
        'peers.leaf_heads.2.fc.weight', TRUNK_CONV,
        'teachers.ensemble.fc.weight'
    ])


SMOOTH = dict(
    type='mmpretrain.LabelSmoothLoss',
    label_smooth_val=0.1,
    num_classes=NUM_CLASSES)


def smoothed_ce(logits: Tensor, labels: Tensor, eps: float = 0.1) -> Tensor:
    """CE against (1 - eps) one-hot + eps / C, by hand (mmpretrain's
    ``LabelSmoothLoss`` builds this target in float32: compare to 1e-6)."""
    log_p = logits.log_softmax(1)
    nll = -log_p.gather(1, labels[:, None])[:, 0]
    return ((1 - eps) * nll - eps * log_p.mean(1)).mean()


def test_one_label_smoothing_of_the_head():
    """The head's smoothing: every branch (each a copy of the head) and
    the gated ensemble (the CE of the first peer it reads)."""
    model = build('one/one_resnet32_1xb128-300e_cifar100.py',
                  {'model.peers.classifier.head.loss': SMOOTH})
    inputs, labels, samples = batch()
    losses = model.loss(inputs, samples)
    out = model.peers(inputs)
    expected = {
        f'peer{p}.loss_ce': smoothed_ce(z, labels)
        for p, z in enumerate(out.logits)
    }
    expected['ensemble.loss_ce'] = smoothed_ce(
        model.teachers.ensemble(out), labels)
    for key, value in expected.items():
        torch.testing.assert_close(losses[key], value, rtol=1e-6, atol=0)
    plain = F.cross_entropy(out.logits[0], labels)
    assert abs(expected['peer0.loss_ce'] - plain) > 1e-3


def test_kdcl_label_smoothing_of_one_member():
    """Each member's own head: member 1 smooths, member 0 does not."""
    model = build('kdcl/kdcl_resnet32x2_1xb128-300e_cifar100.py',
                  {'model.peers.members.1.head.loss': SMOOTH})
    inputs, labels, samples = batch(num_views=2)
    losses = model.loss(inputs, samples)
    logits = model.peers(inputs).logits
    torch.testing.assert_close(
        losses['peer0.loss_ce'],
        0.5 * F.cross_entropy(logits[0], labels),
        rtol=1e-10,
        atol=0)
    torch.testing.assert_close(
        losses['peer1.loss_ce'],
        0.5 * smoothed_ce(logits[1], labels),
        rtol=1e-6,
        atol=0)
