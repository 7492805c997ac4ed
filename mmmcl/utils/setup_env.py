"""Register every mmmcl module at once, for scripts and tests.

``tools/train.py`` and ``tools/test.py`` do not need this: a config's
``default_scope='mmmcl'`` (or a type ``'mmmcl.X'``) makes the registries
import the subpackages named in their ``locations``.
"""
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import all mmmcl subpackages so their classes enter the registries.

    Args:
        init_default_scope (bool): Whether to make ``'mmmcl'`` the default
            scope, so that registries build from mmmcl's nodes (types not
            found there are looked up in mmpretrain's, then mmengine's).
            If another scope is current, a new ``'mmmcl'`` scope instance
            replaces it, with a warning. Defaults to True.
    """
    import mmmcl.datasets  # noqa: F401
    import mmmcl.engine  # noqa: F401
    import mmmcl.evaluation  # noqa: F401
    import mmmcl.models  # noqa: F401
    import mmmcl.visualization  # noqa: F401

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('mmmcl', scope_name='mmmcl')
    elif current.scope_name != 'mmmcl':
        warnings.warn(
            f'The current default scope is "{current.scope_name}"; '
            '`register_all_modules` switches it to "mmmcl". Pass '
            '`init_default_scope=False` to keep it.')
        # instance names are unique: add a timestamp
        DefaultScope.get_instance(
            f'mmmcl-{datetime.datetime.now()}', scope_name='mmmcl')
