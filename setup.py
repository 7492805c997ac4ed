import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools')


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


class BuildPyWithMim(build_py):
    """Copy ``configs`` and ``tools`` into ``mmmcl/.mim`` like mmpretrain."""

    def run(self):
        super().run()
        if self.editable_mode:
            return
        for name in MIM_FILES:
            dst = osp.join(self.build_lib, 'mmmcl', '.mim', name)
            if osp.exists(dst):
                shutil.rmtree(dst)
            shutil.copytree(osp.join(ROOT, name), dst)


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
