"""Atomic writes: the mode a file ends with, symlinks, missing folders and temporary files left by crashes."""

import os
import stat
import subprocess
import sys

import pytest

from tfstate._files import atomic_writer


def _write(path, text="new"):
    with atomic_writer(str(path)) as file:
        file.write(text)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_the_umask_default_mode_and_a_replaced_file_keeps_its_own(tmp_path):
    old = os.umask(0o027)
    try:
        _write(tmp_path / "new.txt")
        assert _mode(tmp_path / "new.txt") == 0o640
    finally:
        os.umask(old)
    existing = tmp_path / "existing.txt"
    existing.write_text("old")
    existing.chmod(0o644)
    _write(existing)
    assert existing.read_text() == "new" and _mode(existing) == 0o644


def test_setuid_setgid_and_sticky_bits_are_never_carried_over(tmp_path):
    existing = tmp_path / "tool.txt"
    existing.write_text("old")
    existing.chmod(0o6755 | stat.S_ISVTX)
    _write(existing)
    assert _mode(existing) == 0o755


def test_a_symlink_target_is_written_through_and_the_link_stays(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    _write(link)
    assert link.is_symlink() and real.read_text() == "new"


def test_a_missing_folder_is_reported_under_the_target_name_and_nothing_is_written(tmp_path):
    target = tmp_path / "no_such_folder" / "state.npz"
    with pytest.raises(FileNotFoundError, match=r"cannot write .*no_such_folder/state.npz: no such folder"):
        _write(target)
    assert not (tmp_path / "no_such_folder").exists()


def test_temporary_files_of_a_crashed_writer_are_removed_on_the_next_write(tmp_path):
    target = tmp_path / "state.npz"
    # a writer killed half-way (os._exit skips the cleanup) leaves its temporary file behind
    code = (
        "import os, sys; from tfstate._files import atomic_writer\n"
        "with atomic_writer(sys.argv[1]) as f:\n    f.write('half'); f.flush(); os._exit(1)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(target)], check=False)
    orphans = [name for name in os.listdir(tmp_path) if name.endswith(".tfstate-tmp")]
    assert len(orphans) == 1 and not target.exists()
    _write(target)
    assert sorted(os.listdir(tmp_path)) == ["state.npz"]


def test_an_error_inside_the_block_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "state.npz"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_writer(str(target)) as file:
            file.write("half")
            raise RuntimeError("failed half-way")
    assert target.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["state.npz"]
