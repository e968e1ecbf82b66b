"""Side effects after commit, through a transactional outbox.

An action calls ``enqueue(topic, payload)``: the job row is written in the action's own
transaction, so a rollback drops it and a commit makes it durable. After a successful commit
the jobs are dispatched in-process (a background thread by default); ``esn worker`` drains
whatever is left, and several workers can run at once because each job is claimed with a lease
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers anyway).
"""

from esn.outbox.dispatch import enqueue, register_handler

__all__ = ["enqueue", "register_handler"]
