import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
# What OpenMIM (`mim search mmmcl`, `mim train mmmcl CONFIG`) reads from
# mmmcl/.mim, as in mmpretrain.
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def get_version() -> str:
    scope = {}
    with open(osp.join(ROOT, 'mmmcl', 'version.py')) as f:
        exec(compile(f.read(), 'mmmcl/version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname: str) -> list:
    """Requirement lines of ``fname``, following ``-r`` includes."""
    reqs = []
    with open(osp.join(ROOT, fname)) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                sub = osp.join(osp.dirname(fname), line[3:].strip())
                reqs += parse_requirements(sub)
            else:
                reqs.append(line)
    return reqs


def install_mim_files(target: str, symlink: bool) -> None:
    """Put ``MIM_FILES`` into ``target`` (the package's ``.mim``).

    ``symlink``: relative links to the source tree (an editable install, so
    that edits show); else copies (a wheel). A link that cannot be made
    (e.g. Windows without the privilege) is a copy.
    """
    os.makedirs(target, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(ROOT, name)
        dst = osp.join(target, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if symlink:
            try:
                os.symlink(osp.relpath(src, target), dst)
                continue
            except OSError:
                pass
        if osp.isdir(src):
            shutil.copytree(
                src, dst,
                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


class BuildPyWithMim(build_py):
    """``configs``, ``tools`` and ``model-index.yml`` in ``mmmcl/.mim`` for
    OpenMIM, like mmpretrain: copies in a wheel; in an editable install
    (``pip install -e .``) symlinks in the source tree's ``mmmcl/.mim``
    (git-ignored), where the editable ``mmmcl`` lives."""

    def run(self):
        super().run()
        if self.editable_mode:
            install_mim_files(osp.join(ROOT, 'mmmcl', '.mim'), symlink=True)
        else:
            install_mim_files(
                osp.join(self.build_lib, 'mmmcl', '.mim'), symlink=False)


setup(
    name='mmmcl',
    version=get_version(),
    description='Online knowledge distillation by (layer-wise) Mutual '
    'Contrastive Learning for OpenMMLab',
    long_description=open(osp.join(ROOT, 'README.md')).read()
    if osp.exists(osp.join(ROOT, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    include_package_data=True,
    python_requires='>=3.8',
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require={'tests': parse_requirements('requirements/tests.txt')},
    cmdclass={'build_py': BuildPyWithMim},
    license='Apache License 2.0',
    zip_safe=False)
