"""Delivery: send the streams of push platforms (rest), each in order, one owner at a time.

The ``dispatcher`` keeps a worker per enabled push platform and wakes it when its stream has
news; a ``worker`` claims its stream's lease, reads the next events and sends them through the
platform's adapter, recording what the answer means (delivered, retry later with ``retry``'s
backoff, dead letter, skipped); ``onboarding`` takes a new platform's users in first.
"""
