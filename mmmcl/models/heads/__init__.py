from .embedding_head import EmbeddingHead
from .layer_matching_weights import LayerMatchingWeights
from .stage_aggregator import StageAggregator

__all__ = ['EmbeddingHead', 'LayerMatchingWeights', 'StageAggregator']
