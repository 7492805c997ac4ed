from .cohort_accuracy import CohortAccuracy

__all__ = ['CohortAccuracy']
