"""README tables that quote a result file, and the check that they do.

A quoted table is wrapped as::

    <!-- result: results/benchmarks/train_step.json -->
    | ... |
    <!-- /result -->

The text between the markers must equal (after ``strip()``) the result
file's top-level string field ``table``, and the file must carry the
``provenance`` that :func:`mmmcl.utils.provenance.write_result` writes
(``command``, ``commit``, ``machine``). Each marker is a line of its own.
"""
import difflib
import glob
import json
import os.path as osp
import re
from typing import List, NamedTuple, Optional

# a marker is a line of its own; one quoted inside prose is text
OPEN = re.compile(r'<!--\s*result:\s*(?P<path>\S+)\s*-->')
CLOSE = re.compile(r'<!--\s*/result\s*-->')
PROVENANCE_FIELDS = ('command', 'commit', 'machine')


class ResultBlock(NamedTuple):
    """A quoted table: the README, the line of its opening marker, the
    result file (relative to the repository root) and the quoted text."""
    readme: str
    line: int
    path: str
    text: str


def readme_files(root: str) -> List[str]:
    """``README.md`` and every ``configs/**/README.md`` under ``root``."""
    files = [osp.join(root, 'README.md')]
    files += sorted(
        glob.glob(osp.join(root, 'configs', '**', 'README.md'),
                  recursive=True))
    return [f for f in files if osp.isfile(f)]


def find_result_blocks(readme: str) -> List[ResultBlock]:
    """The quoted tables of one README.

    Raises:
        ValueError: A marker without its partner, or nested markers,
            naming the README and the line.
    """
    with open(readme, encoding='utf-8') as f:
        lines = f.read().split('\n')
    blocks, start, path, body = [], None, None, []
    for n, line in enumerate(lines, 1):
        opened = OPEN.fullmatch(line.strip())
        closed = CLOSE.fullmatch(line.strip())
        if opened:
            if start is not None:
                raise ValueError(
                    f'{readme}:{n}: `<!-- result: {opened["path"]} -->` '
                    f'opens a block inside the one opened at line {start}: '
                    'close that one first with `<!-- /result -->`.')
            start, path, body = n, opened['path'], []
        elif closed:
            if start is None:
                raise ValueError(
                    f'{readme}:{n}: `<!-- /result -->` closes no block: '
                    'add `<!-- result: results/<file>.json -->` before '
                    'the table or remove the marker.')
            blocks.append(ResultBlock(readme, start, path,
                                      '\n'.join(body).strip()))
            start = None
        elif start is not None:
            body.append(line)
    if start is not None:
        raise ValueError(f'{readme}:{start}: the block of {path} is never '
                         'closed: add `<!-- /result -->` after its table.')
    return blocks


def check_result_block(block: ResultBlock, root: str) -> Optional[str]:
    """Why a quoted table does not match its result file, or None."""
    where = f'{osp.relpath(block.readme, root)}:{block.line}'
    file = osp.join(root, block.path)
    if not osp.isfile(file):
        return (f'{where} quotes {block.path}, which does not exist: run '
                'the command that writes it and commit the file, or remove '
                'the block.')
    try:
        with open(file, encoding='utf-8') as f:
            record = json.load(f)
    except (OSError, ValueError) as e:
        return f'{where} quotes {block.path}, which is not JSON: {e}'
    if not isinstance(record, dict) or not isinstance(
            record.get('table'), str):
        return (f'{block.path} (quoted at {where}) has no top-level string '
                'field `table`: write it with mmmcl.utils.provenance.'
                "write_result(path, dict(table=..., ...)).")
    prov = record.get('provenance')
    missing = [k for k in PROVENANCE_FIELDS
               if not isinstance(prov, dict) or not prov.get(k)]
    if missing:
        return (f'{block.path} (quoted at {where}) lacks provenance.'
                f'{", provenance.".join(missing)}: write it with mmmcl.'
                'utils.provenance.write_result, which records the command, '
                'commit and machine.')
    expected = record['table'].strip()
    if block.text == expected:
        return None
    diff = '\n'.join(
        difflib.unified_diff(
            expected.split('\n'),
            block.text.split('\n'),
            fromfile=f'{block.path} (field `table`)',
            tofile=where,
            lineterm=''))
    return (f'{where}: the table differs from {block.path}. Copy the '
            "file's `table` between the markers; to refresh the numbers, "
            "re-run the command in the file's provenance.\n" + diff)


def check_readmes(root: str,
                  readmes: Optional[List[str]] = None) -> List[str]:
    """Every problem of the quoted tables in ``readmes`` (default:
    :func:`readme_files`), one message each; empty if all match."""
    problems = []
    for readme in readme_files(root) if readmes is None else readmes:
        try:
            blocks = find_result_blocks(readme)
        except ValueError as e:
            problems.append(str(e))
            continue
        problems += [p for p in (check_result_block(b, root) for b in blocks)
                     if p is not None]
    return problems
