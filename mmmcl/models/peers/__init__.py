from .branched_classifier import BranchedClassifier
from .independent_peers import IndependentPeers

__all__ = ['BranchedClassifier', 'IndependentPeers']
