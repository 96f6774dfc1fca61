"""The ``deliver`` command: the delivery workers in a process of their own, beside the web server.

On a busy hub the web server (taking messages in) and the delivery workers (sending them out)
each fill a core; in one Python process they share one. Run the web server with
``HUB_DELIVERY=off`` and this command beside it, on the same database.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from adapters import transports
from hub.cli.output import hub_of
from hub.models import Platform


def _pushing_platforms(hub: Any) -> int:
    with hub.db.read() as session:
        return session.execute(
            select(func.count())
            .select_from(Platform)
            .where(Platform.enabled.is_(True), Platform.transport.in_(transports(pushing=True)))
        ).scalar_one()


@click.command("deliver")
@with_appcontext
def deliver() -> None:
    """Run the delivery workers until stopped (Ctrl-C or SIGTERM), without serving HTTP.

    Start the web server with HUB_DELIVERY=off (e.g. `HUB_DELIVERY=off gunicorn ... wsgi:app`)
    and `flask --app hub hub deliver` beside it with the same HUB_DATABASE_URL. It delivers
    every rest platform's stream, in order. The web server's commits wake it at once (NOTIFY
    on PostgreSQL, a Unix datagram on SQLite), with a safety poll every HUB_WAKE_INTERVAL
    seconds. Several may run: each stream is owned by one process at a time.
    On stopping it records what was sent and hands the streams back.
    """
    hub = hub_of()
    stopping = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        click.echo(f"{signal.Signals(signum).name}: stopping delivery")
        stopping.set()

    # Installed here, not inherited: a command started in the background by a shell without
    # job control starts with SIGINT ignored.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    url = hub.db.engine.url.render_as_string(hide_password=True)
    woken = "NOTIFY" if not hub.db.is_sqlite else "a datagram"
    click.echo(
        f"delivering to {_pushing_platforms(hub)} rest platforms from {url}"
        f" (woken by {woken} for each commit, safety poll every"
        f" {hub.config['HUB_WAKE_INTERVAL']} s); Ctrl-C to stop"
    )
    hub.deliver()
    while not stopping.wait(1.0):
        pass
    hub.close()  # records what was sent, hands the leases back, closes the database
    click.echo("delivery stopped; streams handed back")


COMMANDS = [deliver]
