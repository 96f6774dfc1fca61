"""Marshmallow schemas: what platforms and admins send, and what the hub answers.

``fields`` holds the shared fields, ``calls`` the platform calls, ``admin`` the admin calls,
``sync`` the user sync's report.
"""
