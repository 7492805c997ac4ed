"""Checkpoints and configs of the two distillers before their merge.

The old ``CohortDistiller`` (``members=[...]``, ``aux_depth``, ``logit_kd``,
``contrast_loss``) and ``OnlineKDDistiller`` configs build today's model
through :func:`upgrade_model_cfg`, and an old state dict (``members.N.*``,
``branches.*``, ``aggregators.*``, ``embed_heads.*``, ``contrast_loss.*``)
loads strictly through the key map on load. The stored checkpoints of
``tests/test_engine/test_stored_checkpoints.py`` check the same on real
runs (resume and export).
"""
import copy

import pytest
import torch
from mmengine.registry import DefaultScope

from mmmcl.models.distillers import upgrade_losses, upgrade_model_cfg
from mmmcl.registry import MODELS
from mmmcl.testing import lmcl_model

RESNET8 = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='CifarResNet', depth=8, out_indices=(0, 1, 2)),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(type='mmpretrain.LinearClsHead', in_channels=64))
BANK = dict(type='MemoryBankContrastLoss', num_samples=10, feat_dim=8,
            num_members=2)
OLD_LMCL = dict(
    type='CohortDistiller', members=[RESNET8, RESNET8], num_classes=4,
    aux_depth='full', embed_dim=8, contrast_loss=BANK, logit_kd='aggregator',
    meta=dict(interval=2, proj_dim=8),
    loss_ramp=dict(type='LossWeightRamp', terms=('kd', 'icl')))
# the old leaf configs of each method, and today's
CASES = dict(
    lmcl=(OLD_LMCL,
          lmcl_model([RESNET8, RESNET8], num_classes=4, contrast_loss=BANK,
                     meta=dict(interval=2, proj_dim=8),
                     loss_ramp=dict(type='LossWeightRamp',
                                    terms=('kd_aggregator', 'icl')))),
    mcl=(dict(OLD_LMCL, aux_depth=None, logit_kd='mean', meta=None,
              loss_ramp=None),
         lmcl_model([RESNET8, RESNET8], num_classes=4, contrast_loss=BANK,
                    aux_depth=None,
                    teachers=dict(
                        mean=dict(target=dict(type='PeerMeanTarget'))),
                    distill=[dict(teacher='mean')])),
    dml=(dict(type='CohortDistiller', members=[RESNET8, RESNET8],
              num_classes=4, logit_kd='mutual'),
         dict(type='CohortDistiller', num_classes=4,
              peers=dict(type='IndependentPeers', members=[RESNET8, RESNET8]),
              teachers=dict(mutual=dict(target=dict(type='OtherPeersTarget'))),
              distill=[dict(teacher='mutual')])),
)
# today's key -> the old cohort's
OLD_ROOTS = (('peers.members.', 'members.'), ('peers.branches.', 'branches.'),
             ('teachers.aggregator.aggregators.', 'aggregators.'),
             ('terms.contrast.embed_heads.', 'embed_heads.'),
             ('terms.contrast.contrast_loss.', 'contrast_loss.'))


def build(cfg: dict, seed: int = 0):
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    return model


def old_keys(state_dict: dict) -> dict:
    """A state dict of today laid out as the old cohort's."""
    renamed = {}
    for key, value in state_dict.items():
        for new, old in OLD_ROOTS:
            if key.startswith(new):
                key = old + key[len(new):]
                break
        renamed[key] = value
    return renamed


@pytest.mark.parametrize('method', sorted(CASES))
def test_old_config_builds_todays_model(method):
    old, new = CASES[method]
    upgraded = upgrade_model_cfg(old)
    assert upgraded == upgrade_model_cfg(upgraded)  # today's: unchanged
    ours, theirs = build(upgraded), build(new)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for key, value in ours.state_dict().items():
        assert torch.equal(value, theirs.state_dict()[key]), key
    assert ours.ramp_of_term == theirs.ramp_of_term


@pytest.mark.parametrize('method', sorted(CASES))
def test_old_state_dict_loads_strictly(method):
    model, trained = build(CASES[method][1]), build(CASES[method][1], 1)
    old = old_keys(trained.state_dict())
    if method != 'dml':  # the key map is not a no-op here
        assert any(k.startswith('members.') for k in old)
        assert not any(k.startswith('peers.') for k in old)
    model.load_state_dict(old, strict=True)
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_old_zoo_config_is_renamed_only():
    old = dict(type='OnlineKDDistiller', peers=dict(type='IndependentPeers'))
    assert upgrade_model_cfg(old) == dict(old, type='CohortDistiller')


def test_old_loss_keys():
    old = {'member0.loss_ce': 1., 'member1.s2.loss_ce': 2.,
           'member0.loss_agg_ce': 3., 'member1.loss_kd': 4., 'loss_icl': 5.}
    assert upgrade_losses(old, 'aggregator') == {
        'peer0.loss_ce': 1., 'peer1.s2.loss_ce': 2.,
        'aggregator.peer0.loss_ce': 3., 'peer1.loss_kd_aggregator': 4.,
        'contrast.loss_icl': 5.}
