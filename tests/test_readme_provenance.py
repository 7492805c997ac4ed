"""Every table and figure that the README, the config READMEs and docs/
quote equals its result file, which says where it comes from (command,
commit, machine); their relative links lead somewhere."""
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from mmmcl.testing.model_zoo import OUT as MODEL_ZOO
from mmmcl.testing.model_zoo import build as build_model_zoo
from mmmcl.testing.readme_results import (check_links, check_readmes,
                                          find_figures, find_result_blocks,
                                          readme_files, write_readmes)
from mmmcl.utils.provenance import write_result

ROOT = Path(__file__).parents[1]
TABLE = '| what | value |\n|---|---|\n| steps | 12 |'


def test_readmes_are_scanned():
    readmes = readme_files(str(ROOT))
    assert str(ROOT / 'README.md') in readmes
    assert any('configs' in r for r in readmes)
    assert str(ROOT / 'docs' / 'benchmarks.md') in readmes
    # a scan that finds nothing checks nothing
    paths = {b.path for b in find_result_blocks(str(ROOT / 'README.md'))}
    assert MODEL_ZOO in paths
    paths = {b.path for b in find_result_blocks(
        str(ROOT / 'docs' / 'benchmarks.md'))}
    assert 'results/benchmarks/train_step.json' in paths
    assert find_figures(str(ROOT / 'README.md'), str(ROOT))


def test_readme_tables_equal_result_files():
    problems = check_readmes(str(ROOT))
    assert not problems, '\n\n'.join(problems)


def test_links_lead_somewhere():
    problems = [p for page in readme_files(str(ROOT))
                for p in check_links(page, str(ROOT))]
    assert not problems, '\n'.join(problems)


def test_model_zoo_file_is_what_its_sources_give():
    """results/model_zoo.json (the README's model zoo) equals the table
    built now from the metafiles and the result files it names."""
    record = json.loads((ROOT / MODEL_ZOO).read_text())
    built = build_model_zoo(str(ROOT))
    assert record['table'] == built['table'], (
        f'{MODEL_ZOO} is stale: run `python -m mmmcl.testing.model_zoo`')
    assert record['methods'] == json.loads(json.dumps(built['methods']))


def test_readme_is_a_users_guide():
    """It opens with the two set-up commands, stays short, and links every
    docs page."""
    text = (ROOT / 'README.md').read_text()
    assert len(text.split('\n')) <= 300
    first_block = text.split('```')[1]
    assert first_block.startswith('bash\nmake demo')
    assert '\nmake test' in first_block
    for page in sorted((ROOT / 'docs').glob('*.md')):
        assert f'(docs/{page.name})' in text, page.name
    for section in ('## Installation', '## Get started', '## Model zoo',
                    '## Transfer', '## Citation', '## License'):
        assert section in text, section


def _repo_copy(tmp_path: Path, readme_text: str) -> Path:
    """A repository in tmp_path: README.md and results/x.json."""
    (tmp_path / 'README.md').write_text(readme_text)
    write_result(str(tmp_path / 'results/x.json'), dict(table=TABLE),
                 argv=['tools/x.py', '--a'])
    return tmp_path / 'README.md'


def _quote(text: str, path: str = 'results/x.json') -> str:
    return f'# T\n\n<!-- result: {path} -->\n{text}\n<!-- /result -->\n'


@pytest.mark.parametrize('page', ['README.md', 'docs/benchmarks.md'])
def test_hand_edited_readme_table_fails(tmp_path, page):
    """Copy a page and its result files, change one digit of a quoted
    table in the copy: the check names the page and the result file, and
    ``write_readmes`` puts the file's table back."""
    readme = (ROOT / page).read_text()
    blocks = find_result_blocks(str(ROOT / page))
    assert blocks
    for path in {b.path for b in blocks} | {
            f.path for f in find_figures(str(ROOT / page), str(ROOT))}:
        dst = tmp_path / path
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, dst)
    (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / page).write_text(readme)
    assert check_readmes(str(tmp_path), [str(tmp_path / page)]) == []

    # the last digit of the last block's table (a measured figure), in the
    # README copy only
    block = blocks[-1]
    start = readme.index(block.text)
    digit = re.search(r'\d(?=\D*$)', block.text)
    pos = start + digit.start()
    edited = readme[:pos] + str((int(readme[pos]) + 1) % 10) + \
        readme[pos + 1:]
    (tmp_path / page).write_text(edited)
    problems = check_readmes(str(tmp_path), [str(tmp_path / page)])
    assert len(problems) == 1
    assert f'{page}:{block.line}' in problems[0]
    assert block.path in problems[0]
    # the diff shows the file's line and the edited one
    assert '\n-' in problems[0] and '\n+' in problems[0]

    assert write_readmes(str(tmp_path), [str(tmp_path / page)]) == [
        str(tmp_path / page)]
    assert (tmp_path / page).read_text() == readme


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


def test_docs_pages_are_checked(tmp_path):
    """A block in docs/*.md counts as one in README.md does."""
    _repo_copy(tmp_path, '# no blocks\n')
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'docs' / 'study.md').write_text(
        _quote(TABLE.replace('12', '13')))
    problems = check_readmes(str(tmp_path))
    assert len(problems) == 1
    assert os.path.join('docs', 'study.md') + ':3' in problems[0]


def test_write_fills_an_empty_block(tmp_path):
    readme = _repo_copy(tmp_path, _quote(''))
    assert check_readmes(str(tmp_path), [str(readme)])
    assert write_readmes(str(tmp_path), [str(readme)]) == [str(readme)]
    assert check_readmes(str(tmp_path), [str(readme)]) == []
    assert TABLE in readme.read_text()
    # nothing to do the second time
    assert write_readmes(str(tmp_path), [str(readme)]) == []


def _figure_page(tmp_path: Path, text: str) -> Path:
    """docs/page.md holding ``text``, results/x.json with a few fields."""
    write_result(str(tmp_path / 'results/x.json'),
                 dict(table=TABLE, wall_s=669.64, runs=[dict(top1=0.337)],
                      name='demo'), argv=['tools/x.py'])
    (tmp_path / 'docs').mkdir(exist_ok=True)
    page = tmp_path / 'docs' / 'page.md'
    page.write_text(text)
    return page


@pytest.mark.parametrize('text', [
    'took [669.6 s](../results/x.json "wall_s")',
    'took [670 s](../results/x.json "wall_s")',
    'mAP [33.7](../results/x.json "runs.0.top1 *100")',
    # shown as code: not a figure
    'write `[1.0](../results/x.json "wall_s")` for a figure',
])
def test_figure_matching_its_field_passes(tmp_path, text):
    page = _figure_page(tmp_path, text + '\n')
    assert check_readmes(str(tmp_path), [str(page)]) == []


@pytest.mark.parametrize('text, message', [
    ('took [669.7 s](../results/x.json "wall_s")', 'which is 669.64'),
    ('took [33.8](../results/x.json "runs.0.top1 *100")', 'i.e. 33.7'),
    ('took [1 s](../results/x.json "wall")', 'no field `wall`'),
    ('took [1 s](../results/x.json "runs.3.top1")', 'no field'),
    ('took [1 s](../results/x.json "name")', 'is not a number'),
    ('took [1 or 2 s](../results/x.json "wall_s")', 'exactly one number'),
    ('took [1 s](../results/y.json "wall_s")', 'does not exist'),
])
def test_figure_differing_from_its_field_fails(tmp_path, text, message):
    page = _figure_page(tmp_path, text + '\n')
    problems = check_readmes(str(tmp_path), [str(page)])
    assert len(problems) == 1, problems
    assert message in problems[0] and 'page.md:1' in problems[0]


def test_broken_links_fail(tmp_path):
    page = _figure_page(tmp_path, '\n'.join([
        '# Page', '## A section', '',
        '[ok](../results/x.json) [ok](#a-section) [ok](https://x.org/a)',
        '[missing](../results/missing.json)',
        '[no anchor](#another-section)', '`[as code](nowhere.md)`', '']))
    problems = check_links(str(page), str(tmp_path))
    assert len(problems) == 2, problems
    assert 'page.md:5' in problems[0] and 'does not exist' in problems[0]
    assert 'page.md:6' in problems[1] and '#another-section' in problems[1]
