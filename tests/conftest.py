import pytest
from mmengine.logging import MessageHub, MMLogger
from mmengine.registry import DefaultScope
from mmengine.visualization import Visualizer


@pytest.fixture(autouse=True)
def restore_globals():
    """Drop the default scope, message hubs, loggers and visualizers a
    Runner created: a current scope 'mmengine' would break later tests
    that build mmmcl types without a scope."""
    managers = (DefaultScope, MessageHub, MMLogger, Visualizer)
    saved = [dict(cls._instance_dict) for cls in managers]
    yield
    for cls, instances in zip(managers, saved):
        cls._instance_dict.clear()
        cls._instance_dict.update(instances)
