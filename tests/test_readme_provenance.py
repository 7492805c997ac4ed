"""Every table the READMEs quote equals its result file, which says where
it comes from (command, commit, machine)."""
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from mmmcl.testing.readme_results import (check_readmes, find_result_blocks,
                                          readme_files)
from mmmcl.utils.provenance import write_result

ROOT = Path(__file__).parents[1]
TABLE = '| what | value |\n|---|---|\n| steps | 12 |'


def test_readmes_are_scanned():
    readmes = readme_files(str(ROOT))
    assert str(ROOT / 'README.md') in readmes
    assert any('configs' in r for r in readmes)
    # the benchmark tables at least: a scan that finds nothing checks nothing
    paths = {b.path for b in find_result_blocks(str(ROOT / 'README.md'))}
    assert 'results/benchmarks/train_step.json' in paths


def test_readme_tables_equal_result_files():
    problems = check_readmes(str(ROOT))
    assert not problems, '\n\n'.join(problems)


def _repo_copy(tmp_path: Path, readme_text: str) -> Path:
    """A repository in tmp_path: README.md and results/x.json."""
    (tmp_path / 'README.md').write_text(readme_text)
    write_result(str(tmp_path / 'results/x.json'), dict(table=TABLE),
                 argv=['tools/x.py', '--a'])
    return tmp_path / 'README.md'


def _quote(text: str, path: str = 'results/x.json') -> str:
    return f'# T\n\n<!-- result: {path} -->\n{text}\n<!-- /result -->\n'


def test_hand_edited_readme_table_fails(tmp_path):
    """Copy README.md and its result files, change one digit of a quoted
    table in the copy: the check names the README and the result file."""
    readme = (ROOT / 'README.md').read_text()
    blocks = find_result_blocks(str(ROOT / 'README.md'))
    assert blocks
    for block in blocks:
        dst = tmp_path / block.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / block.path, dst)
    (tmp_path / 'README.md').write_text(readme)
    assert check_readmes(str(tmp_path)) == []

    # the last digit of the last block's table (a measured figure), in the
    # README copy only
    block = blocks[-1]
    start = readme.index(block.text)
    digit = re.search(r'\d(?=\D*$)', block.text)
    pos = start + digit.start()
    edited = readme[:pos] + str((int(readme[pos]) + 1) % 10) + \
        readme[pos + 1:]
    (tmp_path / 'README.md').write_text(edited)
    problems = check_readmes(str(tmp_path))
    assert len(problems) == 1
    assert f'README.md:{block.line}' in problems[0]
    assert block.path in problems[0]
    # the diff shows the file's line and the edited one
    assert '\n-' in problems[0] and '\n+' in problems[0]


def test_matching_block_passes(tmp_path):
    readme = _repo_copy(tmp_path, _quote('\n' + TABLE + '\n'))
    assert check_readmes(str(tmp_path), [str(readme)]) == []


def test_missing_result_file_fails(tmp_path):
    readme = _repo_copy(tmp_path, _quote(TABLE, 'results/missing.json'))
    problems = check_readmes(str(tmp_path), [str(readme)])
    assert len(problems) == 1
    assert 'README.md:3' in problems[0]
    assert 'results/missing.json' in problems[0]
    assert 'does not exist' in problems[0]


def test_result_without_table_fails(tmp_path):
    readme = _repo_copy(tmp_path, _quote(TABLE))
    path = tmp_path / 'results/x.json'
    record = json.loads(path.read_text())
    del record['table']
    path.write_text(json.dumps(record))
    problems = check_readmes(str(tmp_path), [str(readme)])
    assert len(problems) == 1 and '`table`' in problems[0]


@pytest.mark.parametrize('field', ['command', 'commit', 'machine', None])
def test_result_without_provenance_fails(tmp_path, field):
    readme = _repo_copy(tmp_path, _quote(TABLE))
    path = tmp_path / 'results/x.json'
    record = json.loads(path.read_text())
    if field is None:
        del record['provenance']
    else:
        del record['provenance'][field]
    path.write_text(json.dumps(record))
    problems = check_readmes(str(tmp_path), [str(readme)])
    assert len(problems) == 1
    assert f'provenance.{field or "command"}' in problems[0]


@pytest.mark.parametrize('text, message', [
    ('<!-- result: results/x.json -->\n| a |\n', 'never closed'),
    ('| a |\n<!-- /result -->\n', 'closes no block'),
    ('<!-- result: results/x.json -->\n<!-- result: results/x.json -->\n'
     '<!-- /result -->\n', 'inside the one opened at line 1'),
])
def test_unbalanced_markers_fail(tmp_path, text, message):
    readme = _repo_copy(tmp_path, text)
    problems = check_readmes(str(tmp_path), [str(readme)])
    assert len(problems) == 1
    assert message in problems[0] and 'README.md' in problems[0]


def test_marker_inside_prose_is_text(tmp_path):
    text = 'Quoted: between `<!-- result: FILE -->` and `<!-- /result -->`.\n'
    readme = _repo_copy(tmp_path, text + _quote(TABLE))
    assert find_result_blocks(str(readme))[0].line == 4
    assert check_readmes(str(tmp_path), [str(readme)]) == []


def test_config_readmes_are_checked(tmp_path):
    """A block in configs/**/README.md counts as one in README.md does."""
    _repo_copy(tmp_path, '# no blocks\n')
    sub = tmp_path / 'configs' / 'lmcl'
    sub.mkdir(parents=True)
    (sub / 'README.md').write_text(_quote(TABLE.replace('12', '13')))
    problems = check_readmes(str(tmp_path))
    assert len(problems) == 1
    assert os.path.join('configs', 'lmcl', 'README.md') + ':3' in problems[0]
    assert '-| steps | 12 |' in problems[0]
    assert '+| steps | 13 |' in problems[0]
