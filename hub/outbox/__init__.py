"""The outbox: one durable, ordered stream of events per receiving platform.

``enqueue`` appends (each event takes its platform's next seq, in the caller's transaction),
``reader`` is the one way consumers read a stream, ``outcomes`` records what became of events,
``leases`` says who sends a stream and whether its platform answers, ``replay`` queues
delivered events again. Nothing here commits or sends: ingest and delivery do.
"""
