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


@pytest.fixture(autouse=True)
def unformatted_config_text(monkeypatch):
    """Config text as MMEngine writes it, without yapf's reflow.

    A Runner formats its config with yapf for the log, the dumped config
    and every checkpoint's meta (0.3-0.7 s a call on a 2-core CPU: a quarter
    of a tiny resume test). The reflow changes line breaks only, never the
    config, and it is MMEngine's code, not mmmcl's, so tests skip it
    (``Config(format_python_code=False)`` would, but ``Config.fromfile``
    drops that argument for ordinary config files). Tools started as
    subprocesses still format.
    """
    import mmengine.config.config as mmengine_config
    monkeypatch.setattr(mmengine_config, 'FormatCode',
                        lambda text, **kwargs: (text, False))
