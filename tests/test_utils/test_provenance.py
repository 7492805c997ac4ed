import json
import subprocess

from mmmcl.utils.provenance import ROOT, git_commit, write_result


def test_git_commit_is_head_of_the_checkout(monkeypatch):
    monkeypatch.delenv('MMMCL_COMMIT', raising=False)
    head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    assert git_commit().split('-')[0] == head


def test_mmmcl_commit_names_the_commit_of_a_copied_tree(monkeypatch,
                                                        tmp_path):
    """A copy of the tree run elsewhere (stale or no git metadata) is
    credited to the commit its sender names."""
    monkeypatch.setenv('MMMCL_COMMIT', 'abc123')
    assert git_commit() == 'abc123'
    monkeypatch.delenv('MMMCL_COMMIT')
    assert git_commit(str(tmp_path)) == 'unknown'
    path = write_result(str(tmp_path / 'r.json'), dict(table='t'),
                        argv=[f'{ROOT}/tools/x.py', '--a'])
    with open(path) as f:
        record = json.load(f)
    assert record['provenance']['command'] == 'python tools/x.py --a'
    assert record['provenance']['commit'] == git_commit()
    assert record['table'] == 't'
