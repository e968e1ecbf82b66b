"""Closing the sockets that a credential opened when that credential ends, after the commit.

* Sign-out ends one cookie sign-in: ``do_sign_out`` enqueues ``accounts.signed_out`` with the
  sign-in's identifier (the usage event does not carry it, and should not: it is telemetry's
  input), and the sockets opened with that sign-in are closed.
* Revoking an API token: followed from its usage event (``account:token:revoke`` names the
  token); the sockets opened with that token are closed.
* A password change signs out every other sign-in (the auth epoch moves on):
  ``do_set_password`` enqueues ``accounts.signed_out_elsewhere``, and the sockets of sign-ins
  with an older epoch are closed, except those of the sign-in that changed it.

The person's other sockets (another browser, another token) stay open. Each close is an
instruction through the person's own room, so every process closes the matching sockets it
holds (``esn.realtime.sockets.close_sockets``). Deactivation closes all of them
(``esn.realtime.delivery``).
"""

from __future__ import annotations

from typing import Any

from esn.accounts.actions import SIGNED_OUT, SIGNED_OUT_ELSEWHERE
from esn.accounts.models import ApiToken
from esn.outbox import enqueue, register_handler
from esn.realtime.delivery import check_queue
from esn.realtime.sockets import close_sockets
from esn.usage import kinds
from esn.usage.models import UsageEvent
from esn.usage.recorder import listen

TOKEN_REVOKED = "realtime.token_revoked"  # noqa: S105 (a topic, not a secret)


def _signed_out(payload: dict[str, Any]) -> None:
    check_queue()  # an instruction that cannot be published fails the job, which is retried
    close_sockets(payload["user_id"], {"kind": "session", "id": payload["sign_in"]})


def _signed_out_elsewhere(payload: dict[str, Any]) -> None:
    wanted: dict[str, Any] = {"kind": "session", "epoch_below": payload["epoch"]}
    if payload.get("keep_sign_in") is not None:
        wanted["keep_id"] = payload["keep_sign_in"]
    check_queue()
    close_sockets(payload["user_id"], wanted)


def _token_revoked(payload: dict[str, Any]) -> None:
    check_queue()
    close_sockets(payload["user_id"], {"kind": "token", "id": payload["token_id"]})


register_handler(SIGNED_OUT, _signed_out)
register_handler(SIGNED_OUT_ELSEWHERE, _signed_out_elsewhere)
register_handler(TOKEN_REVOKED, _token_revoked)


def _on_token_revoke(event: UsageEvent, session: Any) -> None:
    token = session.get(ApiToken, event.object_id) if event.object_id is not None else None
    if token is not None:  # the holder, whoever revoked it
        enqueue(TOKEN_REVOKED, {"user_id": token.user_id, "token_id": token.id}, session=session)


listen(kinds.TOKEN_REVOKE, _on_token_revoke)
