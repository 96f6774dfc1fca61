"""Code shared by the benchmark scripts: processes, samplers, posting, checks, report, CLI.

The scripts run as ``python bench/<script>.py``, so ``bench/`` is on ``sys.path`` and this
package imports as ``common``. Its submodules:

- ``util``       logging, free ports, waiting, percentiles, stopping processes, HTTP sessions;
- ``processes``  the receiving platform (``bench/receiver.py``) and the hub under gunicorn;
- ``samplers``   CPU, memory and machine-load samplers (psutil);
- ``posting``    the messages sent, the posting threads (closed or open loop);
- ``checks``     lost / duplicated / reordered checks, and the results of a run;
- ``report``     the figure table, the check lines, the notes;
- ``cli``        argument helpers and the run-report-exit skeleton of a script's ``main``.
"""

from common.checks import Check, Results, StreamCheck, check
from common.cli import (
    add_hub_args,
    add_latency_args,
    add_output_args,
    make_parser,
    parse_phases,
    run_and_report,
)
from common.posting import (
    LeanPoster,
    RequestsPoster,
    Sent,
    accepted,
    make_texts,
    message_body,
    post_messages,
    run_threads,
)
from common.processes import Hub, Receiver
from common.report import Table, print_checks, print_notes, verdict
from common.samplers import CpuMeter, LoadSampler, MemorySampler, cpu_seconds, process_cpu
from common.util import (
    PY,
    ROOT,
    free_port,
    log,
    new_session,
    percentile,
    stop_process,
    wait_until,
)

__all__ = [
    "PY",
    "ROOT",
    "Check",
    "CpuMeter",
    "Hub",
    "LeanPoster",
    "LoadSampler",
    "MemorySampler",
    "Receiver",
    "RequestsPoster",
    "Results",
    "Sent",
    "StreamCheck",
    "Table",
    "accepted",
    "add_hub_args",
    "add_latency_args",
    "add_output_args",
    "check",
    "cpu_seconds",
    "free_port",
    "log",
    "make_parser",
    "make_texts",
    "message_body",
    "new_session",
    "parse_phases",
    "percentile",
    "post_messages",
    "print_checks",
    "print_notes",
    "process_cpu",
    "run_and_report",
    "run_threads",
    "stop_process",
    "verdict",
    "wait_until",
]
