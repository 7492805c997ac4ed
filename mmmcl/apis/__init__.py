from .export import (check_backbone_state, check_export_against_config,
                     export_backbone, extract_backbone, load_cohort_checkpoint,
                     member_backbone_cfg, save_backbone)

__all__ = [
    'check_backbone_state', 'check_export_against_config', 'export_backbone',
    'extract_backbone', 'load_cohort_checkpoint', 'member_backbone_cfg',
    'save_backbone'
]
