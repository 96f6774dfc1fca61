"""Command-line pieces the benchmark scripts share: the parser, the flags about the hub and
the output, and the skeleton of ``main`` (run the phases, clean up, keep what was measured)."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from common.checks import Results
from common.util import ROOT, log


def make_parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose description is the script's first paragraph, the rest its epilog."""
    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog=doc.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_hub_args(group: argparse._ArgumentGroup, *, env_example: str, root_help: str) -> None:
    """--hub-env and --hub-root: what the hub runs with, and which source tree."""
    group.add_argument(
        "--hub-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"extra environment of the hub, e.g. {env_example} (repeatable)",
    )
    group.add_argument("--hub-root", type=Path, default=ROOT, help=root_help)


def add_latency_args(
    group: argparse._ArgumentGroup, *, phase: int, rate: float, duration: float, threads: int = 8
) -> None:
    """--rate, --duration and --latency-threads: the open-loop sender of the latency phase."""
    group.add_argument(
        "--rate", type=float, default=rate, help=f"phase {phase} messages/s ({rate:g})"
    )
    group.add_argument(
        "--duration", type=float, default=duration, help=f"phase {phase} seconds ({duration:g})"
    )
    group.add_argument(
        "--latency-threads",
        type=int,
        default=threads,
        help=f"phase {phase} sender threads, open loop: a slow answer does not hold the next"
        f" message back ({threads})",
    )


def add_output_args(group: argparse._ArgumentGroup, *, waiting_for: str) -> None:
    """--stall-timeout, --json and --keep."""
    group.add_argument(
        "--stall-timeout",
        type=float,
        default=30,
        help=f"give up waiting for {waiting_for} after this many seconds without progress (30)",
    )
    group.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    group.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, databases)"
    )


def parse_phases(text: str) -> set[int]:
    """``"1,3"`` -> ``{1, 3}``."""
    return {int(p) for p in text.split(",") if p.strip()}


class Bench(Protocol):
    results: Results

    def run(self) -> Results: ...

    def close(self) -> None: ...

    def log_tails(self) -> list[str]: ...


def run_and_report(make_bench: Callable[[], Bench], workdir: Path, keep: bool) -> Results | None:
    """Run a benchmark in ``workdir`` and stop everything it started, whatever happens. A
    failed run still gives what it measured, with an "aborted" note; None if interrupted."""
    try:
        bench = make_bench()
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: Results | None = None
    try:
        results = bench.run()
    except KeyboardInterrupt:
        log("interrupted")
    except Exception as exc:
        log(f"benchmark failed: {type(exc).__name__}: {exc}")
        for tail in bench.log_tails():
            log(tail)
        results = bench.results
        results.notes.append(f"aborted: {exc}")
    finally:
        bench.close()
        if keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return results
