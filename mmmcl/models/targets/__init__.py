from .concat_feature_target import ConcatFeatureTarget
from .fusion_target import FusionTarget
from .gated_ensemble_target import GatedEnsembleTarget
from .min_logit_target import MinLogitTarget
from .other_peers_target import OtherPeersTarget
from .peer_attention_target import PeerAttentionTarget
from .peer_mean_target import PeerMeanTarget
from .stage_aggregator_target import StageAggregatorTarget

__all__ = [
    'ConcatFeatureTarget', 'FusionTarget', 'GatedEnsembleTarget',
    'MinLogitTarget', 'OtherPeersTarget', 'PeerAttentionTarget',
    'PeerMeanTarget', 'StageAggregatorTarget'
]
