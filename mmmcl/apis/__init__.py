from .export import (check_backbone_state, check_export_against_config,
                     export_backbone, extract_backbone, load_cohort_checkpoint,
                     member_backbone_cfg, save_backbone)
from .export_peers import has_peers, num_peers, peer_backbone

__all__ = [
    'check_backbone_state', 'check_export_against_config', 'export_backbone',
    'extract_backbone', 'load_cohort_checkpoint', 'member_backbone_cfg',
    'save_backbone', 'has_peers', 'num_peers', 'peer_backbone'
]
