"""OpenMIM: the model index (model-index.yml, configs/<method>/metafile.yml)
and ``mim search mmmcl`` / ``mim train mmmcl CONFIG`` on this checkout.

mim finds a package's files under ``<package dir>/.mim`` (model-index.yml,
configs, tools). setup.py puts them there: symlinks in the source tree's
``mmmcl/.mim`` for the editable install, copies in a wheel. mim takes the
package dir from pkg_resources: for an editable (PEP 660) install that is
``site-packages/mmmcl``, which does not exist, so mim is run here with the
repository first on PYTHONPATH (pkg_resources then reads the
``mmmcl.egg-info`` the editable install wrote there), as a user would run
it from a clone: ``PYTHONPATH=. mim search mmmcl``.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / 'configs'
MIM = Path(sys.executable).parent / 'mim'
# configs/<folder> that are not methods: bases and downstream (mmdet/mmseg)
NOT_METHODS = ('_base_', 'transfer')
DATASETS = {
    'cifar100': 'CIFAR-100',
    'in1k': 'ImageNet-1k',
    'mnist5k': 'MNIST-5k',
    'mnist5k-20pd': 'MNIST-5k',
}
ANSI = re.compile(r'\x1b\[[0-9;]*m')
NUMBER = re.compile(r'(?<![\w.])\d+\.\d+(?![\w.])')


def method_folders():
    return sorted(
        p for p in CONFIGS.iterdir()
        if p.is_dir() and p.name not in NOT_METHODS and any(p.glob('*.py')))


def config_stems():
    return sorted(p.stem for d in method_folders() for p in d.glob('*.py'))


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def metafiles():
    index = load_yaml(REPO / 'model-index.yml')
    return {path: load_yaml(REPO / path) for path in index['Import']}


def run_mim(args, env_path, cwd, timeout):
    assert MIM.is_file(), (
        f'{MIM} missing: openmim is in requirements/stack.txt (make install)')
    if env_path == REPO:
        missing = [
            p for p in ('mmmcl/.mim/model-index.yml', 'mmmcl.egg-info')
            if not (REPO / p).exists()
        ]
        assert not missing, (
            f'{missing} missing: the editable install writes them (`pip '
            'install --no-build-isolation --no-deps -e .`); `make clean` '
            'removes them')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(env_path))
    proc = subprocess.run([str(MIM), *args], cwd=cwd, env=env, timeout=timeout,
                          capture_output=True, text=True)
    out = ANSI.sub('', proc.stdout + proc.stderr)
    assert proc.returncode == 0, out[-6000:]
    return out


# ---- the index ------------------------------------------------------------


def test_model_index_imports_one_metafile_per_method_folder():
    imports = load_yaml(REPO / 'model-index.yml')['Import']
    assert imports == sorted(set(imports), key=imports.index)  # no repeats
    assert sorted(imports) == sorted(
        f'configs/{d.name}/metafile.yml' for d in method_folders())


def test_every_config_is_in_exactly_one_metafile():
    seen = {}
    for path, meta in metafiles().items():
        folder = REPO / Path(path).parent
        collections = {c['Name'] for c in meta['Collections']}
        for model in meta['Models']:
            config = model['Config']
            assert (REPO / config).is_file(), f'{path}: {config} not found'
            assert Path(config).parent == folder.relative_to(REPO), config
            assert model['Name'] == Path(config).stem, config
            assert model['In Collection'] in collections, config
            assert 'Weights' not in model, 'no released checkpoints'
            assert config not in seen, f'{config} in {path} and {seen[config]}'
            seen[config] = path
    expected = sorted(
        str(p.relative_to(REPO)) for d in method_folders()
        for p in d.glob('*.py'))
    assert sorted(seen) == expected


def test_collections_name_a_paper_and_their_readme():
    for path, meta in metafiles().items():
        assert len(meta['Collections']) == 1, path
        collection = meta['Collections'][0]
        assert (REPO / collection['README']).is_file(), path
        assert Path(collection['README']).parent == Path(path).parent
        assert collection['Paper']['Title'], path
        assert collection['Paper']['URL'].startswith('https://'), path
        techniques = collection['Metadata']['Training Techniques']
        assert techniques and collection['Metadata']['Architecture'], path
        data = {m['Metadata']['Training Data'] for m in meta['Models']}
        assert set(collection['Metadata']['Training Data']) == data, path


def test_model_metadata_matches_the_configs():
    for meta in metafiles().values():
        for model in meta['Models']:
            stem = model['Name']
            cfg = Config.fromfile(REPO / model['Config'])
            gpus, per_gpu = map(int, re.search(r'_(\d+)xb(\d+)-',
                                               stem).groups())
            assert model['Metadata'] == {
                'Training Data': DATASETS[stem.rsplit('_', 1)[1]],
                'Epochs': cfg.train_cfg.max_epochs,
                'Batch Size': gpus * per_gpu,
            }, stem
            assert cfg.train_dataloader.batch_size == per_gpu, stem


def test_results_are_the_published_numbers_their_readme_quotes():
    """Only figures that the method folder's README.md quotes, each noted as
    published and not reproduced here."""
    with_results = 0
    for path, meta in metafiles().items():
        readme = (REPO / Path(path).parent / 'README.md').read_text()
        quoted = {float(x) for x in NUMBER.findall(readme)}
        for model in meta['Models']:
            for result in model.get('Results', []):
                assert result['Task'] == 'Image Classification'
                assert result['Dataset'] == model['Metadata']['Training Data']
                assert 'not reproduced here' in result['Notes']
                assert result['Metrics'], model['Name']
                for metric, value in result['Metrics'].items():
                    assert metric.startswith(
                        ('Top 1 Accuracy', 'Top 1 Error')), metric
                    assert 0 < value < 100, (model['Name'], metric)
                    assert value in quoted, (
                        f'{model["Name"]}: {metric} {value} is not in '
                        f'{Path(path).parent}/README.md')
                with_results += 1
    # the papers' CIFAR-100 and ImageNet-1k tables are in (not all configs
    # have one: the MNIST-5k recipes and some CIFAR rows quote none)
    assert with_results >= 40


# ---- mim ------------------------------------------------------------------


def test_mim_search_lists_every_config(tmp_path):
    out = run_mim(['search', 'mmmcl'], REPO, tmp_path, timeout=300)
    listed = re.findall(r'^config id: (\S+)$', out, flags=re.M)
    assert 'lmcl_resnet32x2_1xb128-300e_cifar100' in listed
    assert 'one_resnet32_1xb128-300e_cifar100' in listed
    assert sorted(listed) == config_stems()

    dump = tmp_path / 'search.json'
    run_mim(['search', 'mmmcl', '--json', str(dump)], REPO, tmp_path,
            timeout=300)
    table = json.loads(dump.read_text())  # field -> {config id: value}
    lmcl = 'lmcl_resnet32x2_1xb128-300e_cifar100'
    assert table['cifar-100/top_1_accuracy'][lmcl] == 75.82
    assert table['model'][lmcl] == 'l-mcl'
    assert table['config'][lmcl] == f'configs/lmcl/{lmcl}.py'
    assert table['model']['one_resnet32_1xb128-300e_cifar100'] == 'one'
    assert table['epochs']['ffl_resnet32_1xb128-300e_cifar100'] == 301


def test_mim_train_starts(tmp_path):
    """``mim train mmmcl configs/...`` from outside the clone: mim finds the
    config in mmmcl/.mim/configs and runs mmmcl/.mim/tools/train.py; two
    epochs of one batch of 20 images, validated on 10 (the baseline pair:
    what mim finds and starts is the point, not the method)."""
    config = 'configs/baseline/baseline_resnet20x2_1xb100-15e_mnist5k.py'
    work = tmp_path / 'work'
    out = run_mim([
        'train', 'mmmcl', config, '--work-dir', str(work), '--cfg-options',
        'train_cfg.max_epochs=2', 'param_scheduler.1.T_max=1',
        'train_dataloader.batch_size=20',
        'train_dataloader.dataset.num_per_class=2',
        'train_dataloader.batch_sampler.num_per_class=2',
        'val_dataloader.dataset.num_per_class=1'
    ], REPO, tmp_path, timeout=600)
    assert str(REPO / config) in out  # found through mmmcl/.mim/configs
    assert str(REPO / 'mmmcl' / '.mim' / 'tools' / 'train.py') in out
    assert 'Training finished successfully' in out
    assert (work / 'epoch_2.pth').is_file()
    logs = list(work.glob('*/*.log'))
    assert logs and 'Epoch(train) [2][1/1]' in logs[0].read_text()


def test_wheel_carries_the_mim_files(tmp_path):
    """A wheel holds copies (not links) of configs, tools and model-index.yml
    in mmmcl/.mim, and mim reads its index from the unpacked wheel."""
    src = tmp_path / 'src'
    skip = shutil.ignore_patterns('.mim', '__pycache__', '*.pyc')
    for name in ('mmmcl', 'configs', 'tools', 'requirements'):
        shutil.copytree(REPO / name, src / name, ignore=skip)
    for name in ('setup.py', 'README.md', 'model-index.yml'):
        shutil.copy(REPO / name, src / name)
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-deps',
         '--no-build-isolation', '--no-index', '-q', str(src), '-w',
         str(tmp_path / 'dist')],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    wheel, = (tmp_path / 'dist').glob('mmmcl-*.whl')
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / 'site')
    for stem_path in ('model-index.yml', 'tools/train.py',
                      'configs/lmcl/metafile.yml',
                      'configs/_base_/default_runtime.py'):
        assert f'mmmcl/.mim/{stem_path}' in names, stem_path
    assert not any('__pycache__' in n for n in names)

    dump = tmp_path / 'search.json'
    run_mim(['search', 'mmmcl', '--json', str(dump)], tmp_path / 'site',
            tmp_path, timeout=300)
    table = json.loads(dump.read_text())
    assert sorted(table['config']) == config_stems()
