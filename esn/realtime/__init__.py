"""Notifications and live delivery.

Notifications are derived from the usage event log (``esn.usage.recorder.listen``): an action
records its event, and the notification row is written in the same transaction, so an
acknowledged action never loses its notification. Live delivery (Socket.IO) happens after the
commit, through the outbox; quiet hours hold it back, and digests gather what is not pushed.
"""
