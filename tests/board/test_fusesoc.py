"""The FuseSoC core file: fusesoc parses it and its Verilator lint target passes on real
generated Verilog, which plain -Wall (without the documented waivers) does not."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from qfab.compiler.backend.fusesoc import CORE_FILE, LINT_WAIVERS, core_file, core_name

import qfab

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def design_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fusesoc") / "design"
    qfab.compile(str(ROOT / "examples" / "tiny" / "mlp_int2.onnx"), out_dir=out, soc=False)
    return out


def test_compile_writes_the_core_file(design_dir):
    text = (design_dir / CORE_FILE).read_text()
    assert text.startswith("CAPI=2:\n")
    core = yaml.safe_load(text)
    assert core["name"] == core_name("mlp_int2") == "qfab:design:mlp_int2:0"
    for fileset in core["filesets"].values():
        assert all((design_dir / f).is_file() for f in fileset["files"])
    assert set(core["targets"]) == {"default", "lint"}       # no soc.v: no SoC targets
    options = core["targets"]["lint"]["tools"]["verilator"]["verilator_options"]
    assert options == ["-Wall", *(f"-Wno-{w}" for w in LINT_WAIVERS)]
    with_soc = yaml.safe_load(core_file("m", soc=True))
    assert with_soc["targets"]["soc"]["toplevel"] == "qfab_soc"
    assert with_soc["filesets"]["soc"]["files"] == ["soc.v"]


def _fusesoc(design_dir, *args, cwd):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(BIN / "fusesoc"), "--cores-root", str(design_dir), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(not (BIN / "fusesoc").exists(), reason="fusesoc is not installed")
def test_fusesoc_parses_and_lints(design_dir, tmp_path):
    info = _fusesoc(design_dir, "core-info", "qfab:design:mlp_int2:0", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "lint" in info.stdout and CORE_FILE in info.stdout
    lint = _fusesoc(design_dir, "run", "--target", "lint", "qfab:design:mlp_int2:0",
                    cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout[-2000:] + lint.stderr[-2000:]
    verilator = shutil.which("verilator", path=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    plain = subprocess.run([verilator, "--lint-only", "-Wall", "--top-module",
                            "qfab_accelerator", str(design_dir / "accelerator.v")],
                           capture_output=True, text=True, timeout=600)
    assert plain.returncode != 0 and "%Warning-" in plain.stderr
