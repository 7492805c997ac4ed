"""README and docs tables and figures that quote a result file, and the
check that they do.

The pages checked are ``README.md``, ``configs/**/README.md`` and
``docs/**/*.md`` (:func:`readme_files`). A quoted table is wrapped as::

    <!-- result: results/benchmarks/train_step.json -->
    | ... |
    <!-- /result -->

The text between the markers must equal (after ``strip()``) the result
file's top-level string field ``table``, and the file must carry the
``provenance`` that :func:`mmmcl.utils.provenance.write_result` writes
(``command``, ``commit``, ``machine``). Each marker is a line of its own;
the marker's path is relative to the repository root. The blocks are
regenerated from their files by ``python -m mmmcl.testing.readme_results
--write`` (:func:`write_readmes`), never typed.

A figure quoted in prose is a link to its result file whose title names
the field, a dotted path (list items by index), optionally scaled::

    [669.6 s](results/demo/demo.json "wall_s")
    [33.7](../results/demo/demo.json "transfer.det/L-MCL.0 *100")

The link's path is relative to the page (so it opens the file on GitHub);
its text holds one number, which must equal the field (times the scale)
rounded to the text's decimals. Every other relative link of a page must
lead to an existing file, and a ``#anchor`` into a markdown page to one of
its headings (:func:`check_links`).
"""
import argparse
import difflib
import glob
import json
import os.path as osp
import re
import sys
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

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
    """``README.md``, every ``configs/**/README.md`` and every
    ``docs/**/*.md`` under ``root``."""
    files = [osp.join(root, 'README.md')]
    files += sorted(
        glob.glob(osp.join(root, 'configs', '**', 'README.md'),
                  recursive=True))
    files += sorted(
        glob.glob(osp.join(root, 'docs', '**', '*.md'), recursive=True))
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


def load_result(path: str, root: str,
                where: str) -> Tuple[Optional[dict], Optional[str]]:
    """The record of the result file ``path`` (relative to ``root``), or
    why it cannot be quoted (at ``where``): missing, not JSON, or without
    its provenance."""
    file = osp.join(root, path)
    if not osp.isfile(file):
        return None, (f'{where} quotes {path}, which does not exist: run '
                      'the command that writes it and commit the file, or '
                      'remove the quote.')
    try:
        with open(file, encoding='utf-8') as f:
            record = json.load(f)
    except (OSError, ValueError) as e:
        return None, f'{where} quotes {path}, which is not JSON: {e}'
    if not isinstance(record, dict):
        return None, f'{where} quotes {path}, which is not a JSON object.'
    prov = record.get('provenance')
    missing = [k for k in PROVENANCE_FIELDS
               if not isinstance(prov, dict) or not prov.get(k)]
    if missing:
        return None, (
            f'{path} (quoted at {where}) lacks provenance.'
            f'{", provenance.".join(missing)}: write it with mmmcl.'
            'utils.provenance.write_result, which records the command, '
            'commit and machine.')
    return record, None


def check_result_block(block: ResultBlock, root: str) -> Optional[str]:
    """Why a quoted table does not match its result file, or None."""
    where = f'{osp.relpath(block.readme, root)}:{block.line}'
    file = osp.join(root, block.path)
    if osp.isfile(file):
        try:
            with open(file, encoding='utf-8') as f:
                record = json.load(f)
        except (OSError, ValueError):
            record = None
        if isinstance(record, dict) and not isinstance(
                record.get('table'), str):
            return (f'{block.path} (quoted at {where}) has no top-level '
                    'string field `table`: write it with mmmcl.utils.'
                    "provenance.write_result(path, dict(table=..., ...)).")
    record, problem = load_result(block.path, root, where)
    if problem:
        return problem
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
    return (f'{where}: the table differs from {block.path}. Regenerate the '
            'block with `python -m mmmcl.testing.readme_results --write`; '
            "to refresh the numbers, re-run the command in the file's "
            'provenance.\n' + diff)


# ---- figures in prose and links -------------------------------------------

# [text](target "title"): inline links only (no reference-style links)
LINK = re.compile(r'(?<!!)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)'
                  r'(?:\s+"(?P<title>[^"\n]*)")?\)')
IMAGE = re.compile(r'!\[[^\]\n]*\]\((?P<target>[^)\s]+)[^)]*\)')
NUMBER = re.compile(r'[-+\u2212]?\d+(?:\.\d+)?')
FIELD = re.compile(r'(?P<path>\S+?)(?:\s+\*\s*(?P<scale>[\d.eE+-]+))?')


class Figure(NamedTuple):
    """A number quoted in prose: the page, its line, the result file
    (relative to the repository root), the field's dotted path, the
    scale and the quoted text."""
    readme: str
    line: int
    path: str
    field: str
    scale: float
    text: str


def _prose_lines(page: str) -> List[Tuple[int, str]]:
    """The lines of a page outside fenced code blocks, inline code removed
    (links shown as code are text)."""
    with open(page, encoding='utf-8') as f:
        lines = f.read().split('\n')
    out, fenced = [], False
    for n, line in enumerate(lines, 1):
        if line.lstrip().startswith('```'):
            fenced = not fenced
            continue
        if not fenced:
            out.append((n, re.sub(r'`[^`\n]*`', '', line)))
    return out


def _repo_path(page: str, target: str, root: str) -> str:
    """A link target relative to the page, as a path relative to root."""
    path = osp.normpath(osp.join(osp.dirname(page), target))
    return osp.relpath(path, root)


def find_figures(page: str, root: str) -> List[Figure]:
    """The figure links of a page: links to ``results/**.json`` with a
    title."""
    figures = []
    for n, line in _prose_lines(page):
        for m in LINK.finditer(line):
            target, title = m['target'].split('#')[0], m['title']
            if not target.endswith('.json') or title is None:
                continue
            path = _repo_path(page, target, root)
            if not path.startswith('results' + osp.sep):
                continue
            field = FIELD.fullmatch(title.strip())
            scale = float(field['scale']) if field and field['scale'] else 1.
            figures.append(
                Figure(page, n, path, field['path'] if field else title,
                       scale, m['text']))
    return figures


def _field(record: Any, path: str) -> Any:
    """``record`` at a dotted path; KeyError naming the first missing
    step."""
    value = record
    for step in path.split('.'):
        if isinstance(value, list) and re.fullmatch(r'\d+', step):
            if int(step) >= len(value):
                raise KeyError(step)
            value = value[int(step)]
        elif isinstance(value, dict) and step in value:
            value = value[step]
        else:
            raise KeyError(step)
    return value


def check_figure(figure: Figure, root: str) -> Optional[str]:
    """Why a figure link does not quote its result file, or None."""
    where = f'{osp.relpath(figure.readme, root)}:{figure.line}'
    record, problem = load_result(figure.path, root, where)
    if problem:
        return problem
    numbers = NUMBER.findall(figure.text)
    if len(numbers) != 1:
        return (f'{where}: the figure link [{figure.text}] to '
                f'{figure.path} must hold exactly one number in its text.')
    try:
        value = _field(record, figure.field)
    except KeyError as e:
        return (f'{where}: {figure.path} has no field `{figure.field}` '
                f'(no `{e.args[0]}`), quoted as [{figure.text}].')
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return (f'{where}: `{figure.field}` of {figure.path} is not a '
                f'number ({value!r}), quoted as [{figure.text}].')
    text = numbers[0].replace('\u2212', '-')
    decimals = len(text.split('.')[1]) if '.' in text else 0
    expected = value * figure.scale
    # the text is the field rounded to its decimals (either way at a tie)
    if abs(float(text) - expected) > 0.5 * 10**-decimals + 1e-9:
        return (f'{where}: [{figure.text}] quotes `{figure.field}` of '
                f'{figure.path}, which is {value!r}'
                + (f' (x{figure.scale:g})' if figure.scale != 1 else '')
                + f', i.e. {expected:.{decimals}f}: change the text.')
    return None


def heading_anchors(page: str) -> List[str]:
    """GitHub's anchors of a markdown page's headings."""
    anchors, seen = [], {}
    with open(page, encoding='utf-8') as f:
        fenced = False
        for line in f:
            if line.lstrip().startswith('```'):
                fenced = not fenced
                continue
            m = re.match(r'#{1,6}\s+(.*?)\s*#*\s*$', line)
            if fenced or not m:
                continue
            slug = re.sub(r'[^\w\- ]', '', m[1].strip().lower()).replace(
                ' ', '-')
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.append(slug if count == 0 else f'{slug}-{count}')
    return anchors


def check_links(page: str, root: str) -> List[str]:
    """Relative links of a page that lead nowhere: a missing file, or an
    anchor that no heading of the target page has."""
    problems = []
    for n, line in _prose_lines(page):
        targets = [m['target'] for m in LINK.finditer(line)]
        targets += [m['target'] for m in IMAGE.finditer(line)]
        for target in targets:
            if re.match(r'[a-z][a-z0-9+.-]*:', target, re.I):
                continue  # https:, mailto: ...
            file, _, anchor = target.partition('#')
            path = osp.normpath(osp.join(osp.dirname(page), file)) \
                if file else page
            where = f'{osp.relpath(page, root)}:{n}'
            if not osp.exists(path):
                problems.append(f'{where}: the link ({target}) leads to '
                                f'{osp.relpath(path, root)}, which does '
                                'not exist.')
            elif anchor and path.endswith('.md') and \
                    anchor not in heading_anchors(path):
                problems.append(f'{where}: the link ({target}): '
                                f'{osp.relpath(path, root)} has no heading '
                                f'with the anchor #{anchor}.')
    return problems


def check_readmes(root: str,
                  readmes: Optional[List[str]] = None) -> List[str]:
    """Every problem of the quoted tables and figures in ``readmes``
    (default: :func:`readme_files`), one message each; empty if all
    match."""
    problems = []
    for readme in readme_files(root) if readmes is None else readmes:
        try:
            blocks = find_result_blocks(readme)
        except ValueError as e:
            problems.append(str(e))
            continue
        problems += [p for p in (check_result_block(b, root) for b in blocks)
                     if p is not None]
        problems += [p for p in (check_figure(f, root)
                                 for f in find_figures(readme, root))
                     if p is not None]
    return problems


def write_readmes(root: str,
                  readmes: Optional[List[str]] = None) -> List[str]:
    """Regenerate every quoted table from its result file's ``table``;
    the pages that changed. A block whose file is missing or lacks its
    provenance is left as it is (:func:`check_readmes` names it)."""
    changed = []
    for readme in readme_files(root) if readmes is None else readmes:
        blocks = find_result_blocks(readme)
        if not blocks:
            continue
        with open(readme, encoding='utf-8') as f:
            lines = f.read().split('\n')
        tables: Dict[int, str] = {}
        for block in blocks:
            record, problem = load_result(block.path, root, readme)
            if problem is None and isinstance(record.get('table'), str):
                tables[block.line] = record['table'].strip()
        out, skip = [], False
        for n, line in enumerate(lines, 1):
            if skip:
                if CLOSE.fullmatch(line.strip()):
                    skip = False
                    out.append(line)
                continue
            out.append(line)
            if n in tables:
                out.append(tables[n])
                skip = True
        if '\n'.join(out) != '\n'.join(lines):
            with open(readme, 'w', encoding='utf-8') as f:
                f.write('\n'.join(out))
            changed.append(readme)
    return changed


def main(argv: Optional[List[str]] = None) -> int:
    """Check (default) or regenerate (``--write``) the quoted tables of
    README.md, configs/**/README.md and docs/**/*.md."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument('--root', default=osp.dirname(osp.dirname(
        osp.dirname(osp.abspath(__file__)))))
    parser.add_argument('--write', action='store_true',
                        help='rewrite each block from its result file')
    args = parser.parse_args(argv)
    if args.write:
        for page in write_readmes(args.root):
            print(f'rewrote {osp.relpath(page, args.root)}')
    problems = check_readmes(args.root)
    for page in readme_files(args.root):
        problems += check_links(page, args.root)
    print('\n\n'.join(problems) or 'every quoted table, figure and link '
          'matches')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
