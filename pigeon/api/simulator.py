"""The built-in network's handset: POST /simulator/inbound makes a phone text one of your numbers.

Form fields From, To, Body and MediaUrl (repeated; http(s) URLs, as a sent message's, else
21620). Authenticate as the account that holds To (or its parent), which must be active
(20005). The message goes through the same intake as a carrier's: opt-out keywords, the
inbound record, the application's webhook and its replies.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.concurrency import admit
from pigeon.api.context import basic_credentials, ctx, first, form, in_thread
from pigeon.app import accounts
from pigeon.app.inbound import Intake, receive
from pigeon.app.send_request import check_media_urls
from pigeon.domain.errors import ApiError
from pigeon.ports import InboundSms
from pigeon.store.numbers import find_by_number

SIMULATOR = "simulator"


async def inbound(request: Request) -> Response:
    username, password = basic_credentials(request)
    fields = await form(request)
    params = first(fields)
    sender, recipient = params.get("From", "").strip(), params.get("To", "").strip()
    if not sender:
        raise ApiError(21604, "From (the handset's number) is required.")
    if not recipient:
        raise ApiError(21604, "To (one of your numbers) is required.")
    media_urls = tuple(v for k, v in fields if k == "MediaUrl" and v)
    check_media_urls(media_urls)  # as a sent message's: http(s) URLs only (21620)
    sms = InboundSms(
        carrier=SIMULATOR,
        sender=sender,
        recipient=recipient,
        body=params.get("Body", ""),
        media_urls=media_urls,
    )
    c = ctx(request)

    def run() -> Intake:
        with c.db.write() as conn:
            acting = accounts.authenticate_account(conn, username, password)
            request.state.account_sid = acting["sid"]
            admit(request, acting["sid"])
            number = find_by_number(conn, recipient)
            # The number's account (else its own, for an unroutable text) must be one these
            # credentials act on, and active: a suspended account changes nothing (20005).
            owner = acting["sid"] if number is None else str(number["account_sid"])
            accounts.authorize(conn, acting["sid"], owner, request.url.path, acting=acting)
            return receive(conn, sms, now=c.clock.now(), base_url=c.base_url, prices=c.prices)

    intake = await in_thread(run)
    body = {
        "message_sid": intake.message_sid,
        "account_sid": intake.account_sid,
        "keyword": intake.keyword,
        "webhook_queued": intake.webhook_queued,
        "reply_sids": list(intake.reply_sids),
        "unroutable_reason": intake.reason,
    }
    return JSONResponse(body, status_code=201 if intake.message_sid else 202)


routes = [Route("/simulator/inbound", inbound, methods=["POST"])]
