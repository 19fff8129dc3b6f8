"""Outputs are built under a temporary name and renamed into place: a failed or killed run
leaves nothing half written, the next run clears a killed run's leftovers, and what is
written has the permissions the umask gives."""

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from qfab.cli import main
from qfab.output_files import output_file, output_folder, write_output_text

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits" / "digits_int8.onnx"
TINY = ROOT / "examples" / "tiny"

KILLED_MIDWAY = """
import os, signal, sys
from qfab.output_files import output_file, output_folder
if sys.argv[1] == "folder":
    with output_folder(sys.argv[2]) as tmp:
        (tmp / "accelerator.v").write_text("half")
        os.kill(os.getpid(), signal.SIGKILL)
else:
    with output_file(sys.argv[2]) as f:
        f.write(b"half")
        os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_run(kind: str, target: Path) -> list[str]:
    """What a run killed while writing ``target`` leaves beside it."""
    run = subprocess.run([sys.executable, "-c", KILLED_MIDWAY, kind, str(target)])
    assert run.returncode == -signal.SIGKILL
    return sorted(p.name for p in target.parent.iterdir())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def test_compile_clears_what_a_killed_compile_left(tmp_path, capsys):
    out = tmp_path / "design"
    (left,) = _killed_run("folder", out)
    assert left.startswith(".design.qfab-tmp-") and not out.exists()
    assert main(["compile", str(DIGITS), "--no-soc", "-o", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["design"]
    listed = capsys.readouterr().out.split()
    assert listed == [str(out / name) for name in sorted(os.listdir(out))]


def test_reference_clears_what_a_killed_reference_left(tmp_path):
    out = tmp_path / "out.npz"
    (left,) = _killed_run("file", out)
    assert left.startswith(".out.npz.qfab-tmp-")
    assert main(["reference", str(TINY / "mlp_int2.onnx"), "--input",
                 str(TINY / "mlp_int2_input.npy"), "--output", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]


def test_a_running_writers_temporary_is_kept(tmp_path):
    """A temporary whose process still runs (here: this one) is work in progress."""
    target = tmp_path / "t"
    with output_folder(target) as tmp:
        with output_folder(target):
            pass
        assert tmp.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_have_the_permissions_the_umask_gives(mask, tmp_path, umask):
    umask(mask)
    with output_folder(tmp_path / "folder") as tmp:
        (tmp / "file").write_text("x")
    write_output_text(tmp_path / "text", "x")
    assert _mode(tmp_path / "folder") == 0o777 & ~mask
    assert _mode(tmp_path / "folder" / "file") == 0o666 & ~mask
    assert _mode(tmp_path / "text") == 0o666 & ~mask


def test_a_failed_write_keeps_the_old_output(tmp_path):
    folder, file = tmp_path / "folder", tmp_path / "file"
    with output_folder(folder) as tmp:
        (tmp / "old").write_text("old")
    write_output_text(file, "old")
    for target in (folder, file):
        with pytest.raises(RuntimeError):
            with (output_folder if target is folder else output_file)(target) as out:
                if target is folder:
                    (out / "new").write_text("new")
                else:
                    out.write(b"new")
                raise RuntimeError("failed midway")
    assert os.listdir(folder) == ["old"] and file.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]
    # and a finished one replaces it whole
    with output_folder(folder) as tmp:
        (tmp / "new").write_text("new")
    assert os.listdir(folder) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]



@pytest.mark.parametrize("where", ["under a file", "onto a folder"])
def test_a_target_that_cannot_be_written_is_one_line_exit_2(where, tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_folder.npz").mkdir()
    out = tmp_path / ("a_file/out.npz" if where == "under a file" else "a_folder.npz")
    if where == "onto a folder":
        (out / "inside").write_text("")
    assert main(["reference", str(TINY / "mlp_int2.onnx"), "--input",
                 str(TINY / "mlp_int2_input.npy"), "--output", str(out)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"qfab reference: error: cannot write {out}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "a_folder.npz"]


TERMINATED_MIDWAY = """
import os, signal, sys, time
import qfab.commands.inspect
from qfab.cli import main
from qfab.output_files import output_folder

def run(args):
    with output_folder(sys.argv[1]) as tmp:
        (tmp / "accelerator.v").write_text("half")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)  # the signal ends this

qfab.commands.inspect.run = run
sys.exit(main(["inspect", "MODEL"]))
"""


def test_a_terminated_command_removes_its_temporaries(tmp_path):
    run = subprocess.run([sys.executable, "-c", TERMINATED_MIDWAY, str(tmp_path / "design")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 128 + signal.SIGTERM
    assert run.stderr == "qfab inspect: terminated\n"
    assert not any(tmp_path.iterdir())
