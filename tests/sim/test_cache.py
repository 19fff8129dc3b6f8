"""The Verilator cache's cap (least recently used builds go first, never the new one) and the
`qfab cache` command that shows and clears what qfab keeps, on a fake cache folder."""

import json
import os
import time

import pytest
from qfab.sim import verilator_build
from qfab.sim.verilator_build import _DONE_MARK, build_key, build_model, prune

from qfab.cli import main


def _fake_build(root, name: str, size: int, used: float):
    build = root / name
    (build / "obj").mkdir(parents=True)
    (build / "obj" / "Vtop").write_bytes(b"x" * size)
    (build / "obj" / "Vtop__pch.h.fast.gch").write_bytes(b"p" * 1000)
    (root / f"{name}.lock").touch()
    mark = build / _DONE_MARK
    mark.write_text("{}")
    os.utime(mark, (used, used))
    return build


def test_prune_drops_the_least_recently_used_beyond_the_cap(tmp_path):
    now = time.time()
    old, middle, new = (_fake_build(tmp_path, n, 400, now - age)
                        for n, age in (("old", 300), ("middle", 200), ("new", 100)))
    removed = prune(tmp_path, cap=1000, keep=old)
    assert removed == [middle]  # new and old (kept: just built) fit 1000 bytes; middle not
    assert old.is_dir() and new.is_dir() and not middle.exists()
    assert not (tmp_path / "middle.lock").exists()
    assert not list(tmp_path.glob("*/obj/*.gch"))  # only needed to build


def test_a_cache_hit_counts_as_a_use(tmp_path):
    verilog = "// qfab-cosim {}\nmodule cosim_top; endmodule\n"
    build = _fake_build(tmp_path, build_key(verilog)[:32], 10, time.time() - 1000)
    hit = build_model(verilog, cache_dir=tmp_path)
    assert hit.cached and hit.build_dir == build
    assert time.time() - (build / _DONE_MARK).stat().st_mtime < 100


def test_the_cap_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("QFAB_VERILATOR_CACHE_MB", "1.5")
    assert verilator_build.cache_cap() == 1_500_000
    monkeypatch.setenv("QFAB_VERILATOR_CACHE_MB", "lots")
    with pytest.raises(Exception, match="QFAB_VERILATOR_CACHE_MB must be a number"):
        verilator_build.cache_cap()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QFAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("QFAB_SYNTH_CACHE", str(tmp_path / "synth"))
    root = tmp_path / "verilator"
    root.mkdir()
    for name in ("a", "b"):
        _fake_build(root, name, 1000, time.time())
    (root / "c.tmp-running").mkdir()  # another process's build in progress
    (tmp_path / "synth").mkdir()
    (tmp_path / "synth" / "k.json").write_text("{}")
    (tmp_path / "crash-1.txt").write_text("Traceback")
    return tmp_path


def _parts(capsys) -> dict:
    out = json.loads(capsys.readouterr().out)["cache"]
    return {p["name"]: p for p in out["parts"]}


def test_cache_shows_each_part(cache, capsys):
    assert main(["cache", "--json"]) == 0
    parts = _parts(capsys)
    assert parts["verilator"]["entries"] == 3 and parts["verilator"]["bytes"] >= 4000
    assert parts["verilator"]["path"] == str(cache / "verilator")
    assert parts["synth"]["entries"] == 1 and parts["crash"]["entries"] == 1
    assert main(["cache"]) == 0
    assert "verilator" in capsys.readouterr().out


def test_cache_clear_keeps_other_parts_and_running_builds(cache, capsys):
    assert main(["cache", "--clear", "verilator", "--json"]) == 0
    parts = _parts(capsys)
    assert parts["verilator"]["entries"] == 1  # the build still running
    assert (cache / "verilator" / "c.tmp-running").is_dir()
    assert (cache / "verilator" / "a.lock").is_file()
    assert parts["synth"]["entries"] == 1
    assert main(["cache", "--clear", "--json"]) == 0
    parts = _parts(capsys)
    assert parts["synth"]["entries"] == 0 and parts["crash"]["entries"] == 0


def test_cache_clear_of_an_unknown_part_is_a_user_error(cache, capsys):
    assert main(["cache", "--clear", "everything"]) == 2
    assert "no cache part 'everything'" in capsys.readouterr().err
