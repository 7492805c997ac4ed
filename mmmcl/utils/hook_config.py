"""Switching off an mmmcl default hook from the command line."""
from typing import List

from mmengine.config import Config

__all__ = ['MMENGINE_DEFAULT_HOOKS', 'drop_disabled_hooks']

#: The keys of mmengine's own ``Runner.register_default_hooks``: None there
#: removes the hook, so these are left to the Runner.
MMENGINE_DEFAULT_HOOKS = ('runtime_info', 'timer', 'sampler_seed', 'logger',
                          'param_scheduler', 'checkpoint')


def drop_disabled_hooks(cfg: Config) -> List[str]:
    """Remove the ``default_hooks`` entries other than mmengine's set to None.

    mmmcl keeps its own hooks in ``default_hooks`` under names
    (``configs/_base_/default_runtime.py``), so that a child's
    ``custom_hooks`` cannot drop them. mmengine's Runner accepts None only
    for its six keys and asserts on any other; after this,
    ``--cfg-options default_hooks.cohort_plot=None`` switches the hook off.

    Returns:
        list[str]: The names removed.
    """
    hooks = cfg.get('default_hooks')
    if not hooks:
        return []
    names = [
        name for name, hook in hooks.items()
        if hook is None and name not in MMENGINE_DEFAULT_HOOKS
    ]
    for name in names:
        hooks.pop(name)
    return names
