from .cohort_plot_hook import CohortPlotHook
from .cohort_sanity_hook import CohortSanityHook
from .contrast_index_hook import ContrastIndexHook
from .export_backbones_hook import ExportBackbonesHook
from .meta_step_hook import MetaStepHook
from .random_state_hook import RandomStateHook

__all__ = [
    'CohortPlotHook', 'CohortSanityHook', 'ContrastIndexHook',
    'ExportBackbonesHook', 'MetaStepHook', 'RandomStateHook'
]
