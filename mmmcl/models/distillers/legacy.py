"""Checkpoints and configs of the two distillers before the merge.

Until mmmcl 0.x the methods ran on two models: ``CohortDistiller`` (L-MCL,
MCL, DML, baseline: ``members=[...]``, ``aux_depth``, ``logit_kd``,
``contrast_loss``) and ``OnlineKDDistiller`` (the zoo, already in today's
shape). Their checkpoints load into today's :class:`CohortDistiller`
through :func:`map_legacy_keys`, their configs build it through
:func:`upgrade_model_cfg` (the export tools apply it to the config a
checkpoint stores).
"""
import copy
import re
from typing import Dict, Optional

# the old cohort's children -> where they live now
_KEY_MAP = (
    ('members.', 'peers.members.'),
    ('branches.', 'peers.branches.'),
    ('aggregators.', 'teachers.aggregator.aggregators.'),
    ('embed_heads.', 'terms.contrast.embed_heads.'),
    ('contrast_loss.', 'terms.contrast.contrast_loss.'),
)
# logit_kd of the old cohort -> (teacher name, its target, its distill)
_LOGIT_KD = {
    'aggregator':
    ('aggregator', dict(type='StageAggregatorTarget'), dict(mimic='all')),
    'mean': ('mean', dict(type='PeerMeanTarget'), {}),
    'mutual': ('mutual', dict(type='OtherPeersTarget'), {}),
}
_OLD_LOSS = re.compile(r'member(\d+)\.(s\d+\.)?loss_(ce|agg_ce|kd)')


def map_legacy_keys(state_dict: dict, prefix: str, *args) -> None:
    """Load-state-dict pre-hook: rename an old cohort's keys in place
    (``members.0.`` -> ``peers.members.0.``, ...); a state dict of today's
    layout is left as it is."""
    if not any(k.startswith(prefix + 'members.') for k in state_dict):
        return
    for key in list(state_dict):
        for old, new in _KEY_MAP:
            if key.startswith(prefix + old):
                state_dict[prefix + new + key[len(prefix + old):]] = \
                    state_dict.pop(key)
                break


def upgrade_model_cfg(model: dict) -> dict:
    """An old distiller's model config in today's shape (a copy); today's
    configs come back unchanged."""
    model = copy.deepcopy(dict(model))
    if model.get('type') == 'OnlineKDDistiller':
        model['type'] = 'CohortDistiller'
        return model
    if 'members' not in model:
        return model
    peers = dict(type='IndependentPeers', members=model.pop('members'))
    aux_depth = model.pop('aux_depth', None)
    if aux_depth is not None:
        peers['aux_depth'] = aux_depth
    model['peers'] = peers
    logit_kd = model.pop('logit_kd', None)
    if logit_kd is not None:
        name, target, distill = _LOGIT_KD[logit_kd]
        model['teachers'] = {
            name: dict(target=target, ce_weight=float(name == 'aggregator'))
        }
        model['distill'] = [dict(teacher=name, **distill)]
    contrast_loss = model.pop('contrast_loss', None)
    term = {
        k: model.pop(k)
        for k in ('embed_dim', 'loss_weights') if k in model
    }
    if contrast_loss is not None:
        model['terms'] = dict(
            contrast=dict(
                type='MutualContrastTerm', contrast_loss=contrast_loss,
                **term))
    ramps = model.get('loss_ramp')
    for ramp in [ramps] if isinstance(ramps, dict) else ramps or []:
        if ramp.get('terms') and logit_kd is not None:
            ramp['terms'] = [
                f'kd_{_LOGIT_KD[logit_kd][0]}' if t == 'kd' else t
                for t in ramp['terms']
            ]
    return model


def upgrade_loss_key(key: str, kd_teacher: Optional[str]) -> str:
    """An old cohort's loss key as today's distiller names it
    (``member0.loss_ce`` -> ``peer0.loss_ce``, ``loss_vcl`` ->
    ``contrast.loss_vcl``, ``member0.loss_kd`` ->
    ``peer0.loss_kd_{kd_teacher}``, ...)."""
    if key.startswith('loss_'):
        return f'contrast.{key}'
    match = _OLD_LOSS.fullmatch(key)
    if match is None:
        return key
    member, stage, kind = match.groups()
    if kind == 'agg_ce':
        return f'aggregator.peer{member}.loss_ce'
    if kind == 'kd':
        return f'peer{member}.loss_kd_{kd_teacher}'
    return f'peer{member}.{stage or ""}loss_ce'


def upgrade_losses(losses: Dict[str, float],
                   kd_teacher: Optional[str]) -> Dict[str, float]:
    """:func:`upgrade_loss_key` on every key of ``losses``."""
    return {upgrade_loss_key(k, kd_teacher): v for k, v in losses.items()}
