"""`make demo` end to end, a few iterations per stage (tools/run_demo.py)."""
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mmmcl.utils.progress import Progress

REPO = Path(__file__).resolve().parents[2]


def run_demo(work_dir: Path) -> str:
    result = subprocess.run(
        [sys.executable, 'tools/run_demo.py', '--tiny', '--work-dir',
         str(work_dir)],
        cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[
        -3000:]
    return result.stdout


def test_tiny_demo_writes_table_plots_and_predictions(tmp_path):
    out = run_demo(tmp_path)
    table = (tmp_path / 'results.txt').read_text()
    assert table in out
    for cohort in ('L-MCL', 'baseline'):
        assert re.search(rf'^\| {cohort} (\| \d+\.\d\d ){{3}}\|$', table,
                         re.M), table
    for init in ('L-MCL', 'baseline', 'scratch'):
        assert re.search(rf'^\| {init} (\| \d+\.\d ){{2}}\|$', table,
                         re.M), table
    result = json.loads((tmp_path / 'results.json').read_text())
    assert result['table'] == table.strip()
    assert result['provenance']['command'].startswith(
        'python tools/run_demo.py --tiny')
    # every stage is a tool call the user could run alone
    for tool in ('tools/train.py', 'tools/test.py',
                 'tools/model_converters/export_backbone.py'):
        assert f'[demo] $ {sys.executable} {tool}' in out
    for task in ('det', 'seg'):
        assert (tmp_path / f'{task}_curves.png').stat().st_size > 0
    assert list(tmp_path.glob('det_L-MCL_seed0/test/*/vis/*.png'))
    for name in ('l-mcl', 'baseline'):
        assert (tmp_path / 'backbones' / f'{name}_member0.pth').is_file()

    # a rerun finds every stage's output and skips it
    again = run_demo(tmp_path)
    assert '[demo] $' not in again
    assert again.count('skipped') == 2 * 3 + 6 * 2


@pytest.mark.slow
def test_tiny_demo_is_seeded(tmp_path):
    """Two runs from scratch print the same tables."""
    run_demo(tmp_path / 'first')
    run_demo(tmp_path / 'second')
    assert (tmp_path / 'second' / 'results.txt').read_text() == (
        tmp_path / 'first' / 'results.txt').read_text()


class _Terminal(io.StringIO):

    def isatty(self) -> bool:
        return True


def test_progress_in_a_log_is_lines():
    """`make demo > log`: a line every 10 %, no carriage return."""
    log = io.StringIO()
    bar = Progress(600, 'writing', file=log)
    for _ in range(600):
        bar.update()
    bar.close()
    text = log.getvalue()
    assert '\r' not in text
    lines = text.splitlines()
    assert len(lines) == 10, lines
    assert lines[0].startswith('writing: 60/600 (10 %), ')
    assert lines[-1].startswith('writing: 600/600 (100 %), ')


def test_progress_on_a_terminal_is_a_live_bar():
    tty = _Terminal()
    bar = Progress(5, file=tty)
    for _ in range(5):
        bar.update()
    bar.close()
    text = tty.getvalue()
    assert text.count('\r') == 5 and text.endswith('\n')
    assert text.count('\n') == 1


def test_canvas_progress_in_a_log(tmp_path, capsys):
    """The demo's data step (the only progress bar it prints itself),
    written to a redirected stream: short lines."""
    from mmmcl.datasets import prepare_mnist_canvas
    prepare_mnist_canvas(str(tmp_path / 'canvas'), progress=True,
                         num_canvases=(4, 2, 2))
    out = capsys.readouterr().out
    assert '\r' not in out
    assert 'writing MNIST canvases: 8/8 (100 %)' in out
    lines = [line for line in out.splitlines() if line.startswith('writing')]
    assert len(lines) == 8 and max(map(len, lines)) < 80, lines
