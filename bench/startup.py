"""Start-up benchmark: how long ``hotline --help`` takes, from a fresh process.

Prints human-readable figures; the last line is one JSON object. Measures, each the median
of N runs (``--runs``, default 21; ``--quick`` 7), the wall time and the CPU time
(user + system, less sensitive to a loaded machine than the wall time) of:

- ``python -c pass`` (the interpreter alone: the floor);
- ``python -c "import hotline.cli"`` (the command modules, without rendering any help);
- ``hotline --help`` (the console script, as a user runs it);
- ``hotline init --help`` (a subcommand's help: Typer then also imports pydantic).

The children run with Python's byte-code cache on (``PYTHONDONTWRITEBYTECODE`` removed
from their environment), as in any installed copy: with it set and an editable install,
every run compiles hotline's own modules again (0.1 s more for ``hotline --help``).
The target (issue 11) is ``hotline --help`` in 0.3 s or less on an idle machine.
Must not touch: anything but the processes it starts (no station, no data directory).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

from benchkit import machine

TARGET_S = 0.3


def _hotline() -> list[str]:
    """The ``hotline`` console script beside this interpreter, else ``python -m hotline``."""
    script = os.path.join(os.path.dirname(sys.executable), "hotline")
    if os.path.exists(script):
        return [script]
    found = shutil.which("hotline")
    return [found] if found else [sys.executable, "-m", "hotline"]


def _env(pyc: bool) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    if pyc:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(argv: list[str], runs: int, *, pyc: bool = True) -> dict[str, Any]:
    env = _env(pyc)
    _once(argv, env)  # warm: byte code compiled (when cached), files in the page cache
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = _once(argv, env)
        walls.append(wall)
        cpus.append(cpu)
    return {
        "wall_s_median": round(statistics.median(walls), 3),
        "wall_s_min": round(min(walls), 3),
        "cpu_s_median": round(statistics.median(cpus), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="7 runs of each (default 21)")
    ap.add_argument("--runs", type=int, default=None)
    args = ap.parse_args()
    runs = args.runs or (7 if args.quick else 21)
    hotline = _hotline()
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import hotline.cli": [sys.executable, "-c", "import hotline.cli"],
        "hotline --help": [*hotline, "--help"],
        "hotline init --help": [*hotline, "init", "--help"],
    }
    out: dict[str, Any] = {"machine": machine(), "runs": runs, "target_s": TARGET_S}
    print(f"start-up, median of {runs} runs (load average {os.getloadavg()[0]:.2f} at start)")
    results: dict[str, Any] = {}
    for name, argv in cases.items():
        r = measure(argv, runs)
        results[name] = r
        print(
            f"  {name:<22} wall {r['wall_s_median']:.3f} s (min {r['wall_s_min']:.3f})"
            f"   cpu {r['cpu_s_median']:.3f} s"
        )
    out["results"] = results
    out["loadavg_1m_at_end"] = os.getloadavg()[0]
    help_s = results["hotline --help"]["wall_s_median"]
    verdict = "meets" if help_s <= TARGET_S else "misses"
    print(f"hotline --help: {help_s:.3f} s, {verdict} the {TARGET_S} s target")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
