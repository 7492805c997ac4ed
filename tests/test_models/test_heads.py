import pytest
import torch
import torch.nn.functional as F

from mmmcl.models.heads import (EmbeddingHead, LayerMatchingWeights,
                                StageAggregator)
from mmmcl.registry import MODELS


def test_layer_matching_weights_block_by_block():
    feat_dims = [[4, 6], [5, 5, 3]]
    meta = LayerMatchingWeights(feat_dims, proj_dim=7)
    gen = torch.Generator().manual_seed(0)
    feats = [[torch.randn(3, d, generator=gen) for d in dims]
             for dims in feat_dims]
    weights = meta(feats)
    expected = []
    for i in range(2):
        for j in range(2):
            if i == j:
                continue
            for k in range(len(feat_dims[i])):
                for z in range(len(feat_dims[j])):
                    a = meta.proj[i][k](feats[i][k])
                    b = meta.proj[j][z](feats[j][z])
                    expected.append(torch.sigmoid(F.cosine_similarity(a, b)))
    assert weights.shape == (meta.num_blocks, 3) == (12, 3)
    torch.testing.assert_close(weights, torch.stack(expected))
    with pytest.raises(ValueError, match='stages'):
        meta(feats[:1] + feats[:1])


def test_embedding_head_is_unit_norm():
    head = EmbeddingHead(10, embed_dim=4)
    out = head(torch.randn(5, 10))
    assert out.shape == (5, 4)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(5))


def test_stage_aggregator_formula():
    agg = StageAggregator(in_channels=3, num_stages=2)
    feats = [torch.randn(4, 3), torch.randn(4, 3)]
    logits = [torch.randn(4, 5), torch.randn(4, 5)]
    a = agg.mlp(torch.cat(feats, 1)).softmax(1)
    expected = a[:, :1] * logits[0] + a[:, 1:] * logits[1]
    torch.testing.assert_close(agg(feats, logits), expected)


def test_registered():
    assert isinstance(
        MODELS.build(dict(type='LayerMatchingWeights', feat_dims=[[2], [3]])),
        LayerMatchingWeights)
