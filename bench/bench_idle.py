"""What an idle hub process costs its PostgreSQL server: transactions a second, and CPU.

A hub on PostgreSQL should make next to no queries while nothing happens: processes wake each
other with LISTEN/NOTIFY and only a slow safety poll reads the streams. This script gives a
hub (gunicorn, one worker, from ``--root``) a database of its own on the server
(``--postgres``, dropped afterwards) and three REST platforms (bench receivers), lets it
onboard them, then counts the transactions the server committed or rolled back in that
database (``pg_stat_database``) over ``--seconds``, with the hub's CPU over the same time.
Each transaction is one statement (the bare cursors' autocommit reads) or a few (a read
transaction). Pass ``--root`` a checkout of another commit to compare, in the same minutes.

    .venv/bin/python bench/bench_idle.py
    .venv/bin/python bench/bench_idle.py --root /tmp/old-checkout --seconds 30
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from common import ROOT, Hub, Receiver, log, wait_until

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
TOKENS = {"A": "bench-token-A", "B": "bench-token-B", "C": "bench-token-C"}


def transactions(admin: psycopg.Connection, database: str) -> int:
    """Committed plus rolled-back transactions of ``database`` so far (as the server last
    flushed its counters)."""
    admin.execute("SELECT pg_stat_clear_snapshot()")
    row = admin.execute(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
        (database,),
    ).fetchone()
    return int(row[0]) if row else 0


def measure(args: argparse.Namespace, workdir: Path, admin: psycopg.Connection) -> None:
    database = f"hub_idle_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{database}"')
    receivers = [Receiver(name, token, workdir) for name, token in TOKENS.items()]
    url = args.postgres.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    hub = Hub(
        workdir / "hub",
        [r.entry(i + 1) for i, r in enumerate(receivers)],
        admin_token="bench-admin",
        root=args.root,
        hub_env=[f"HUB_DATABASE_URL={url}/{database}", "HUB_SCHEDULER=off"],
        threads=8,
    )
    try:
        for receiver in receivers:
            receiver.start()
        hub.start()
        wait_until(
            lambda: all(p["health"] == "up" for p in hub.platforms().values()),
            60,
            "every platform onboarded",
        )
        log(f"hub up on {database}; settling for {args.settle:g} s")
        time.sleep(args.settle)  # a benchmark's idle period, not a wait for a condition
        before, cpu_before, started = transactions(admin, database), hub.cpu_seconds(), time.time()
        time.sleep(args.seconds)
        after, cpu_after = transactions(admin, database), hub.cpu_seconds()
        elapsed = time.time() - started
        rate = (after - before) / elapsed
        cpu = 100 * (cpu_after - cpu_before) / elapsed
        print(f"idle hub on PostgreSQL ({args.root}): {rate:.2f} transactions/s, "
              f"{cpu:.1f}% of a core, over {elapsed:.0f} s (target: a few a second)")  # fmt: skip
    finally:
        hub.stop()
        for receiver in receivers:
            receiver.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the hub's tree (default: this)")
    parser.add_argument(
        "--postgres", default=DEFAULT_POSTGRES, help="a server database to connect to first"
    )
    parser.add_argument("--seconds", type=float, default=60, help="how long to count")
    parser.add_argument("--settle", type=float, default=10, help="idle time before counting")
    args = parser.parse_args(argv)
    with (
        psycopg.connect(args.postgres, autocommit=True) as admin,
        tempfile.TemporaryDirectory(prefix="bench-idle-") as workdir,
    ):
        measure(args, Path(workdir), admin)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
