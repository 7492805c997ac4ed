from .cohort_plot_hook import CohortPlotHook
from .cohort_progress_hook import CohortProgressHook
from .cohort_sanity_hook import CohortSanityHook
from .contrast_index_hook import ContrastIndexHook
from .export_backbones_hook import ExportBackbonesHook
from .random_state_hook import RandomStateHook

__all__ = [
    'CohortPlotHook', 'CohortProgressHook', 'CohortSanityHook',
    'ContrastIndexHook', 'ExportBackbonesHook', 'RandomStateHook'
]
