"""Markdown tables of measured results, as README.md quotes them."""
from typing import Sequence

from .provenance import machine


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table; ``|`` in a cell is escaped, newlines become
    spaces."""

    def line(cells: Sequence) -> str:
        cells = [str(c).replace('|', '\\|').replace('\n', ' ') for c in cells]
        return '| ' + ' | '.join(cells) + ' |'

    return '\n'.join([line(header), '|' + '---|' * len(header)] +
                     [line(row) for row in rows])


def machine_note(device: str) -> str:
    """The machine as :func:`mmmcl.utils.provenance.machine` records it,
    for a table header, and a warning that other jobs may share it."""
    info = machine()
    if device.startswith('cuda'):
        hardware, shared = info['device'], 'GPU'
    else:
        hardware = f"{info['processor']}, {info['cpu_count']} CPUs"
        shared = 'CPU'
    threads = info['torch_threads']
    return (f"{hardware}, torch {info['torch']} with {threads} thread"
            f"{'' if threads == 1 else 's'}; other jobs may share the "
            f'{shared}')
