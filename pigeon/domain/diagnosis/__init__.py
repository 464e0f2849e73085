"""The doctor's rules: facts about messages, numbers, opt-outs and requests in; findings out.

Pure: no store, no network, no clock (the facts carry `now`). `pigeon.app.diagnose` gathers
the facts; `pigeon.doctor` renders the findings.

Cause identifiers (stable; `--json` and the API carry them):

    flow        cause                        severity   what it means
    message     carrier_undelivered          error      the carrier's receipt said undelivered
                carrier_failed               error      the carrier refused the submit, or reported failed
                expired                      error      waited in the queue past its validity period (30036)
                account_inactive             error      its account was suspended or closed before it
                                                        went out (30002)
                geo_not_permitted            error      its country was taken off the account's geo
                                                        permissions before it went out (21408)
                sender_released              error      its From number was released or moved to another
                                                        account before it went out (21606)
                opted_out_while_waiting      error      its recipient opted out after it was accepted,
                                                        before it went out (21610; the opt-out behind it)
                no_pool_sender               error      scheduled through a Messaging Service whose pool
                                                        had no sender for it at its SendAt (21701/21704/21703)
                resend_limit                 error      dispatchers kept stopping before recording its
                                                        submit; failed (30008) rather than sent again
                media_refused                error      its media could not go as MMS (its sender cannot
                                                        send MMS, or no routed carrier carries media) and
                                                        nothing converted them: 30011 before any submit
                stuck_in_queue               error/warn due and not taken, sending with a dead dispatcher,
                                                        scheduled and never queued; or paced far behind
                carrier_retrying             warning    temporary refusals; Pigeon retries
                waiting_for_bind_holder      info/warn  left for the worker process bound to its carrier
                no_receipt_yet               warning    sent, and no receipt after a while (with the
                                                        count of receipts that matched no message)
                in_progress                  info       on its way and not late
                scheduled, canceled          info
                status_callback_failing      warning    the StatusCallback URL did not take the callbacks
                pigeon_resent                warning    Pigeon submitted it more than once (and why)
                media_as_links               info       its media went as links in an SMS (MmsConverter),
                                                        and why (sender or route)
                carrier_id_reused            warning    the carrier gave its id to another message too,
                                                        before a receipt came (which message got it)
                carrier_duplicate            warning    one submit, several delivered receipts
                no_webhook, webhook_failing, invalid_twiml, reply_not_sent   (an inbound message)
                message_erased               warning    erased with a phone number's data (`pigeon
                                                        erase`): when, by whom; the SID only as a
                                                        keyed fingerprint in the erasure's record
                message_deleted              warning    a DELETE request removed it (who, when)
                message_past_retention       warning    older than PIGEON_MESSAGE_DAYS: removed
                message_not_found            error      no such message on the account, no DELETE
                                                        of it in the request log, no erasure of it
    recipient   rejected_by_api              error      the API refused the sends (codes explained)
                message_erased               warning    the number's data was erased in the window:
                                                        what was there before cannot be examined
                                                        (said instead of never_requested)
                never_requested              error      no request to send to this number
                number_not_e164              error      nothing found under a number not written in
                                                        E.164 (also in blocked and duplicates)
                opted_out                    error      21610 and the opt-out behind it
                opted_back_in                info       21610, and no opt-out now (START since)
                geo_not_permitted            error/info 21408: the account's geo permissions, and
                                                        whether they still refuse the country
                + the message causes of each message to the number
    number      number_not_on_account, number_not_sms_capable, no_webhook   error
                webhook_failing, invalid_twiml    error (test request fails) / warning (history only,
                                                        or the fallback URL took the texts)
                webhook_slow                 warning
                received_without_webhook     warning    texts came while it had no webhook (how many,
                                                        since when, the latest); it has one now
                unroutable_inbound           error      texts that never reached the account
                short_code_country           info       country-bound short-code rules
    blocked     opted_out                    error
    duplicates  app_sent_multiple_requests   warning    several records: several API requests
                pigeon_resent, carrier_duplicate
                message_erased               warning    --to a number erased in the window: what
                                                        went cannot be compared
"""

from __future__ import annotations

from pigeon.domain.diagnosis.blocked import OPT_IN, diagnose_blocked, opted_out_finding
from pigeon.domain.diagnosis.duplicates import diagnose_duplicates, group_similar
from pigeon.domain.diagnosis.facts import (
    BlockedFacts,
    DuplicateFacts,
    DuplicateGroup,
    MessageFacts,
    MissingFacts,
    NumberFacts,
    RecipientFacts,
    WebhookExchange,
    WebhookHop,
    WebhookProbe,
    WebhookTarget,
)
from pigeon.domain.diagnosis.inbound import REPLY_CODES, TWIML_CODES, WEBHOOK_CODES
from pigeon.domain.diagnosis.message import diagnose_message
from pigeon.domain.diagnosis.missing import diagnose_missing
from pigeon.domain.diagnosis.model import Finding, Report, Severity, Thresholds
from pigeon.domain.diagnosis.number import diagnose_number, number_checks
from pigeon.domain.diagnosis.recipient import diagnose_recipient
from pigeon.domain.diagnosis.submits import Submits, count_submits, delivered_receipts

__all__ = [
    "OPT_IN",
    "REPLY_CODES",
    "TWIML_CODES",
    "WEBHOOK_CODES",
    "BlockedFacts",
    "DuplicateFacts",
    "DuplicateGroup",
    "Finding",
    "MessageFacts",
    "MissingFacts",
    "NumberFacts",
    "RecipientFacts",
    "Report",
    "Severity",
    "Submits",
    "Thresholds",
    "WebhookExchange",
    "WebhookHop",
    "WebhookProbe",
    "WebhookTarget",
    "count_submits",
    "delivered_receipts",
    "diagnose_blocked",
    "diagnose_duplicates",
    "diagnose_message",
    "diagnose_missing",
    "diagnose_number",
    "diagnose_recipient",
    "group_similar",
    "number_checks",
    "opted_out_finding",
]
