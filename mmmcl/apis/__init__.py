from .export import (check_backbone_state, check_export_against_config,
                     export_backbone, load_cohort_checkpoint, save_backbone)
from .export_peers import num_peers, peer_backbone

__all__ = [
    'check_backbone_state', 'check_export_against_config', 'export_backbone',
    'load_cohort_checkpoint', 'save_backbone', 'num_peers', 'peer_backbone'
]
