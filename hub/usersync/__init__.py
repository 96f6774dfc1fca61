"""The user sync: reconcile each platform's ``GET users`` with the directory (``reconcile``),
nightly on ``HUB_SYNC_CRON`` (``scheduler``), once per period across processes (``jobs``),
or now (``sync``, behind ``POST /admin/sync-users`` and ``flask hub sync-users``)."""
