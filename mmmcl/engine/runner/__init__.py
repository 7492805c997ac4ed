from .cohort_optim_wrapper_constructor import CohortOptimWrapperConstructor

__all__ = ['CohortOptimWrapperConstructor']
