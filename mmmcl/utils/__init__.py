from .check_data import check_data_roots
from .hook_config import drop_disabled_hooks
from .safe_load import (SAFE_GLOBALS, UnsafeCheckpointError, load_from_local,
                        register_safe_globals)
from .setup_env import register_all_modules

__all__ = [
    'SAFE_GLOBALS', 'UnsafeCheckpointError', 'check_data_roots',
    'collect_env', 'drop_disabled_hooks', 'load_from_local',
    'register_all_modules', 'register_safe_globals'
]


def __getattr__(name: str):
    # ``collect_env`` is imported on first use: importing the submodule here
    # would make ``python -m mmmcl.utils.collect_env`` run it twice (runpy
    # warns about a module found in sys.modules before execution).
    if name == 'collect_env':
        from .collect_env import collect_env
        globals()['collect_env'] = collect_env
        return collect_env
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
