"""Run every benchmark in bench/ (what `make bench` runs): ``python -m bench [NAME ...]``.

A benchmark module exposes ``run() -> list[str]`` (the lines to print) or, failing that,
``main(argv) -> int`` (it prints itself). One failing benchmark does not stop the others; the
exit status is 1 if any failed.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path


def modules() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)])
                  if not m.name.startswith("_"))


def run_one(name: str) -> bool:
    print(f"== bench/{name}.py", flush=True)
    start = time.perf_counter()
    try:
        mod = importlib.import_module(f"bench.{name}")
        if hasattr(mod, "run"):
            for line in mod.run():
                print(line, flush=True)
            ok = True
        elif hasattr(mod, "main"):
            ok = mod.main([]) == 0
        else:
            print(f"bench/{name}.py has neither run() nor main(); skipped")
            return True
    except Exception:
        traceback.print_exc()
        ok = False
    print(f"-- {name}: {'done' if ok else 'FAILED'} in {time.perf_counter() - start:.1f} s\n",
          flush=True)
    return ok


def main(argv: list[str]) -> int:
    names = argv or modules()
    unknown = sorted(set(names) - set(modules()))
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; available: {', '.join(modules())}",
              file=sys.stderr)
        return 2
    results = [run_one(name) for name in names]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
