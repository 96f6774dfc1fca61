"""Monitoring: the one status query operators read (API, page, CLI) and the Prometheus metrics."""
