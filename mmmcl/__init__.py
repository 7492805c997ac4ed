from importlib import import_module
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version

from .version import __version__, version_info

# The ranges mmmcl works with (the tested stack is pinned in
# requirements/runtime.txt and installed by ``make install``).
_REQUIRED = (
    # (module, distributions to ask for its version, minimum, maximum)
    ('mmcv', ('mmcv', 'mmcv-full', 'mmcv-lite'), '2.0.0', '2.2.0'),
    ('mmengine', ('mmengine', 'mmengine-lite'), '0.10.7', '1.0.0'),
    ('mmpretrain', ('mmpretrain', ), '1.2.0', '1.3.0'),
)


def _installed_version(module: str, dists: tuple) -> str:
    """Version of ``module`` without importing it where possible."""
    for dist in dists:
        try:
            return dist_version(dist)
        except PackageNotFoundError:
            continue
    try:
        return import_module(module).__version__
    except ImportError:
        raise ImportError(
            f'mmmcl needs {module}, which is not installed. Run '
            '`make install` to install the tested stack.') from None


def _check_versions() -> None:
    """Fail with the package, its version and the range mmmcl needs."""
    found = {m: _installed_version(m, d) for m, d, _, _ in _REQUIRED}
    from mmengine.utils import digit_version  # installed: checked above
    for module, _, minimum, maximum in _REQUIRED:
        if not (digit_version(minimum) <= digit_version(found[module]) <
                digit_version(maximum)):
            raise ImportError(
                f'{module}=={found[module]} is installed, but mmmcl needs '
                f'{module}>={minimum},<{maximum}. Run `make install` to '
                'install the tested stack.')


_check_versions()

from .utils.safe_load import register_safe_globals  # noqa: E402

register_safe_globals()

__all__ = ['__version__', 'version_info']
