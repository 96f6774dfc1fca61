"""Routing: who receives each event (one rule, ``receivers``) and what each receiver gets.

Payloads are rendered per receiver when an event is queued (its local ids, its recipients), so
a retry sends the same bytes. ``messages`` reads what a message's routing needs as small views.
"""
