"""Provenance: what a run records (tlr.provenance.provenance) and how the chapters show it
(short_commit, short_command)."""

import torch

from tlr.provenance import cpu_name, provenance, short_command, short_commit

RAW = ("/tmp/tlr-run/tlr/__main__.py run ppc --preset paper --models ORDER 0,KF-1 --seed 0 "
       "--checkpoint-dir /work/main/runs/ckpt --json /work/main/results/ppc/paper_seed0.json")


def test_short_commit_marks_local_changes():
    assert short_commit("0123456789abcdef") == "0123456"
    assert short_commit("0123456789abcdef-dirty") == "0123456 + local changes"
    assert short_commit("unknown (tlr 0.1.0, not a git checkout)") == "unknown"


def test_short_command_has_no_machine_paths():
    assert short_command(RAW) == ('python -m tlr run ppc --preset paper --models "ORDER 0,KF-1" '
                                  '--seed 0 --checkpoint-dir … --json …')
    assert short_command(RAW, json="results/ppc/{name}", checkpoint_dir=None) == (
        'python -m tlr run ppc --preset paper --models "ORDER 0,KF-1" --seed 0 '
        "--json results/ppc/paper_seed0.json")
    quoted = 'python -m tlr run ppc --models "KF-1,rEFH" --seed 1'
    assert short_command(quoted) == quoted
    # a sweep's command line, shell-quoted (shlex.join) around a name outside ASCII
    assert short_command("/x/tlr/__main__.py run ppc --models 'rVAE-β' --seed 0") == (
        'python -m tlr run ppc --models "rVAE-β" --seed 0')


def test_short_command_hides_other_absolute_paths():
    raw = "results/balls/chain_starts.py --seed 0 --checkpoint rEFH, CD-25=/tmp/exp/a.pt"
    assert short_command(raw) == "results/balls/chain_starts.py --seed 0 --checkpoint rEFH, CD-25=…"


def test_git_revision_outside_a_checkout(tmp_path, monkeypatch):
    from tlr.provenance import git_revision
    monkeypatch.delenv("TLR_GIT_REVISION", raising=False)
    assert git_revision(tmp_path).startswith("unknown (tlr ")
    monkeypatch.setenv("TLR_GIT_REVISION", "0123456789abcdef")
    got = git_revision(tmp_path)
    assert got == "0123456789abcdef (declared by TLR_GIT_REVISION; a copy, not a git checkout)"
    assert short_commit(got) == "0123456"


def test_provenance_records_a_declared_commit(monkeypatch):
    monkeypatch.delenv("TLR_GIT_REVISION", raising=False)
    assert "declared_commit" not in provenance()
    monkeypatch.setenv("TLR_GIT_REVISION", "abc")
    assert provenance()["declared_commit"] == "abc"


def test_provenance_records_the_cpu():
    cpu = provenance()["cpu"]
    assert cpu == cpu_name() and cpu.endswith(f", {torch.backends.cpu.get_cpu_capability()}")
    assert len(cpu) > len(torch.backends.cpu.get_cpu_capability()) + 2  # a name before it
