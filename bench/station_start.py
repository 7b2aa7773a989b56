"""The CPU of starting a station, plain or forked from the tests' fork server.

Owns one measurement: N SQLite stations (localnet) each started to ready and stopped in
turn, as a new interpreter (``plain``) or forked from hotline/forkserver.py (``fork``);
prints the wall time and the children's CPU per start, and the fork server's own CPU.
Must not touch: anything but its own temporary directory.

Usage: python bench/station_start.py plain|fork [N]
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from hotline import localnet


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "fork"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    localnet.use_fork_server(mode == "fork")
    with tempfile.TemporaryDirectory(prefix="station-start-") as root:
        stations = [localnet.make_station(Path(root), f"s{i}") for i in range(n)]
        cpu0 = children_cpu()
        t0 = time.monotonic()
        for st in stations:
            st.start()
            st.stop()
        wall = time.monotonic() - t0
        cpu = children_cpu() - cpu0
        forks = localnet._forks()
        if forks is not None:
            forks.close()
        with_server = children_cpu() - cpu0
    print(f"{mode}: {n} starts, wall per start {wall / n:.2f} s, children's CPU per start "
          f"{cpu / n:.2f} s, fork server's own CPU {with_server - cpu:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
