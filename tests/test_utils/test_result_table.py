import torch

from mmmcl.utils.provenance import machine
from mmmcl.utils.result_table import machine_note, markdown_table


def test_markdown_table_escapes_cells():
    assert markdown_table(['name', 'x'], [['a|b', 1.5], ['c\nd', None]]) == (
        '| name | x |\n|---|---|\n| a\\|b | 1.5 |\n| c d | None |')


def test_machine_note_names_the_machine():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        note = machine_note('cpu')
    finally:
        torch.set_num_threads(threads)
    info = machine()
    assert note.startswith(f"{info['processor']}, {info['cpu_count']} CPUs, "
                           f"torch {info['torch']} with 1 thread;")
    assert note.endswith('other jobs may share the CPU')
