"""The Twilio error codes that Pigeon emits or explains, as data.

One `ErrorInfo` per code. ``name`` is Twilio's short name for the code, so that
clients and people searching for it find the same words; ``meaning``, ``causes``
and ``remedy`` are Pigeon's own explanation, written for someone who runs Pigeon
themselves and can look at its logs, its carriers and its configuration.

``kind`` says where a code shows up:

- ``api``: returned synchronously in the error body of a refused request, with
  ``http_status``;
- ``delivery``: set on an outbound message (``error_code``, status failed or
  undelivered) and sent in its status callback;
- ``webhook``: logged as an alert when a webhook, a status callback or the TwiML
  it returned could not be used;
- ``inbound``: logged against an inbound message that arrived damaged;
- ``debugger``: a warning Pigeon's debugger logs as an alert, about traffic that
  went through but looks wrong (a duplicate send). These codes are Pigeon's own,
  in the 79xxx block that Twilio's error dictionary does not use; their
  ``more_info`` is Pigeon's explanation endpoint (``/v1/Errors/{code}``).

Names come from Twilio's error dictionary (the 2023-05 snapshot); 11216, 21659,
21660, 30036, 35115 and 35117 are newer than that snapshot and carry the names on
their pages at twilio.com/docs/api/errors. `pigeon errors CODE` prints an entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = ["CATALOGUE", "PIGEON_CODES", "ErrorInfo", "Kind", "explain", "more_info_url"]

Kind = Literal["api", "delivery", "webhook", "inbound", "debugger"]

#: Codes that are Pigeon's own, not Twilio's: a block Twilio's dictionary leaves empty
#: (its 2023-05 snapshot of 1,953 codes has nothing from 71000 to 79999).
PIGEON_CODES = range(79000, 80000)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """One Twilio error code, with Pigeon's explanation of it."""

    code: int
    name: str
    http_status: int | None
    kind: Kind
    meaning: str
    causes: tuple[str, ...]
    remedy: tuple[str, ...]

    @property
    def more_info(self) -> str:
        return more_info_url(self.code)


def more_info_url(code: int) -> str:
    """The documentation link Twilio puts in ``more_info`` for ``code``; for Pigeon's own
    codes, the path of Pigeon's explanation of it (relative to the server)."""
    if code in PIGEON_CODES:
        return f"/v1/Errors/{code}"
    return f"https://www.twilio.com/docs/errors/{code}"


def explain(code: int) -> ErrorInfo | None:
    """The catalogue entry for ``code``, or None if Pigeon does not know it."""
    return CATALOGUE.get(code)


def _api(
    code: int,
    status: int,
    name: str,
    meaning: str,
    causes: tuple[str, ...],
    remedy: tuple[str, ...],
) -> ErrorInfo:
    return ErrorInfo(code, name, status, "api", meaning, causes, remedy)


def _dlr(
    code: int,
    name: str,
    meaning: str,
    causes: tuple[str, ...],
    remedy: tuple[str, ...],
) -> ErrorInfo:
    return ErrorInfo(code, name, None, "delivery", meaning, causes, remedy)


def _hook(
    code: int,
    name: str,
    meaning: str,
    causes: tuple[str, ...],
    remedy: tuple[str, ...],
) -> ErrorInfo:
    return ErrorInfo(code, name, None, "webhook", meaning, causes, remedy)


def _index(entries: Iterable[ErrorInfo]) -> Mapping[int, ErrorInfo]:
    table: dict[int, ErrorInfo] = {}
    for entry in entries:
        if entry.code in table:
            raise ValueError(f"error code {entry.code} is catalogued twice")
        table[entry.code] = entry
    return MappingProxyType(table)


_DOCTOR = "Run `pigeon doctor message SID` to see the message's timeline"

_ACCOUNT_AND_REQUEST: tuple[ErrorInfo, ...] = (
    _api(
        20001,
        400,
        "Unknown parameters",
        "The request carried parameters this endpoint does not know. Parameter "
        "names are PascalCase and case-sensitive, so a misspelt field counts as "
        "absent rather than as the value you meant.",
        (
            "A name with the wrong case or spelling, e.g. statusCallback instead of StatusCallback.",
            "A parameter from another Twilio API or a newer release that Pigeon does not implement.",
            "An HTTP library or framework adding its own fields to the form body.",
        ),
        (
            "Compare the fields recorded in the request log (`pigeon requests`) with the names in Twilio's API reference.",
            "Drop fields the endpoint does not take, or upgrade Pigeon if the parameter is new.",
        ),
    ),
    _api(
        20003,
        401,
        "Permission Denied",
        "Pigeon could not tie the credentials on the request to an account that "
        "may act on the AccountSid in the URL, so it neither read nor changed "
        "anything.",
        (
            "No Authorization header, or a scheme other than HTTP Basic.",
            "A wrong AccountSid or AuthToken, often an old token left in the "
            "application's configuration after a rotation.",
            "An API key (SK...) that was deleted or belongs to another account.",
            "Subaccount credentials used on the parent's URL or on a sibling's.",
        ),
        (
            "Check what the application sends: the user name is the AccountSid "
            "or an SK key, the password the AuthToken or the key's secret.",
            "With API keys, pass the AC account SID to the SDK separately "
            "(twilio-python: Client(key_sid, secret, account_sid=...)).",
            "Find the refused call in the request log (`pigeon requests --account AC… --unauthenticated`) to see which SID it presented.",
        ),
    ),
    _api(
        20004,
        405,
        "Method not allowed",
        "The path exists, but it does not accept that HTTP verb.",
        (
            "PUT or PATCH: this API creates and updates with POST.",
            "DELETE on a list, or on a resource that cannot be removed.",
            "POST to a read-only resource.",
        ),
        ("Use POST to create or update, GET to read, DELETE only where the resource allows it.",),
    ),
    _api(
        20005,
        403,
        "Account not active",
        "The account in the URL exists on this Pigeon installation but is suspended or closed "
        "(or its main account is), and an account that is not active may not send or change "
        "anything. Reading its history (messages, usage, numbers, exports) still works.",
        (
            "An operator, or the parent account, set the account's Status to suspended.",
            "The parent account is suspended, which stops its subaccounts too.",
            "The account was closed; closing is final.",
        ),
        (
            "If its parent suspended it, the parent reactivates it with POST "
            "/2010-04-01/Accounts/{Sid}.json and Status=active; if the operator did (21478 on "
            "that request), the operator does, with pigeon accounts status AC… --activate.",
            "A closed account stays closed and its numbers were released when it was closed: "
            "create a new subaccount and buy them again from the inventory.",
        ),
    ),
    _api(
        20007,
        400,
        "Page size too large",
        "A list request asked for more rows in one page than the API returns (at most 1,000).",
        (
            "PageSize above 1000.",
            "A client that sets the page size from the total it expects to read.",
        ),
        (
            "Ask for 1,000 rows or fewer and follow next_page_uri; the SDKs' "
            "stream() and list(limit=...) page for you.",
            "For a full copy of the logs, use the export in the CLI or console instead of paging.",
        ),
    ),
    _api(
        20008,
        403,
        "Test Credentials",
        "The request authenticated with an account's test credentials on a "
        "resource that refuses them. Test credentials only serve to try message "
        "creation against the magic test numbers, without sending anything.",
        (
            "Test credentials left in a production configuration.",
            "A test suite that lists or fetches resources with test credentials.",
        ),
        (
            "Use the live credentials for that call.",
            "To exercise the whole path, receipts and callbacks included, run "
            "against the built-in simulator and its scripted outcomes instead.",
        ),
    ),
    _api(
        20009,
        400,
        "Cannot delete this resource before it is complete",
        "A message still on its way cannot be deleted: Pigeon keeps the record "
        "until it reaches a final status, so that carrier receipts and callbacks "
        "still have a message to land on.",
        (
            "Deleting a message that is accepted, scheduled, queued or sending.",
            "Cleaning up right after a send, before the receipt came back.",
        ),
        (
            "Wait for a final status (watch the status callback, or `pigeon doctor message SID`), then delete.",
            "Cancel a scheduled message first with Status=canceled.",
            "To remove the text sooner, redact it: update the message with an empty Body.",
        ),
    ),
    _api(
        20404,
        404,
        "Not Found",
        "Nothing exists at that path for this account. Pigeon gives the same "
        "answer whether the SID never existed or belongs to another account, so "
        "that one account cannot probe for another's data.",
        (
            "A mistyped or truncated SID.",
            "The resource was deleted.",
            "The SID belongs to another account or subaccount than the one in the URL.",
            "A wrong path, e.g. a missing API version or resource name.",
        ),
        (
            "Check the SID and the AccountSid in the URL; list the collection to find the record.",
            "Use the credentials and URL of the account that owns the resource.",
        ),
    ),
    _api(
        20409,
        409,
        "Conflict",
        "The request clashes with an earlier one or with the resource's current "
        "state. Most often an Idempotency-Key was reused with different "
        "parameters: the key already names a message made from other values, "
        "and Pigeon refuses rather than guess which one you meant.",
        (
            "The same Idempotency-Key sent with a different To, From, Body or other parameter.",
            "Keys built from something too coarse, such as a user id or a timestamp rounded to the minute.",
            "Two requests changing the same resource at the same moment.",
        ),
        (
            "Derive the key from the event that triggers the message, so that a "
            "retry repeats it and a different message never shares it.",
            "If you really meant a second message, send it with a fresh key.",
            "The request log (`pigeon requests`) shows both requests that used the key.",
        ),
    ),
    _api(
        20413,
        413,
        "Request Entity Too Large",
        "The request body is larger than the API accepts.",
        (
            "A huge Body or a very long list of parameters.",
            "Uploading media in the form instead of pointing to it.",
        ),
        ("Reference media with MediaUrl links and keep Body within 1,600 characters.",),
    ),
    _api(
        20429,
        429,
        "Too Many Requests",
        "Pigeon turned the request away before doing anything with it, because "
        "the account already had as many requests in progress as the server takes "
        "at once from one account. Nothing was created, so trying again is safe.",
        (
            "A burst of parallel sends from many workers or threads.",
            "A retry loop without a pause between attempts.",
            "A server that answers slowly (a busy store), so that a client's requests pile up.",
            "A limit the operator set low (PIGEON_API_CONCURRENCY_PER_ACCOUNT, per API process).",
        ),
        (
            "Retry after a pause that grows with each attempt, with some jitter.",
            "Cap the client's concurrency. Pigeon queues and paces messages per "
            "sender itself, so a steady stream of POSTs is enough.",
        ),
    ),
    _api(
        20500,
        500,
        "Internal Server Error",
        "Pigeon failed unexpectedly while handling the request. Whether the "
        "request took effect depends on how far it got.",
        (
            "A bug in Pigeon.",
            "The database went away in the middle of the request.",
        ),
        (
            "Retry with the same Idempotency-Key, so a send that did commit is not made twice.",
            "Find the traceback in the server log by the time and request id, "
            "and report it with the request-log entry.",
        ),
    ),
    _api(
        20503,
        503,
        "Service unavailable",
        "Pigeon is running but cannot serve requests at the moment.",
        (
            "The database is unreachable or out of connections.",
            "The disk that holds the database is full.",
            "The server is shutting down or restarting.",
        ),
        (
            "Retry with backoff, keeping the same Idempotency-Key.",
            "Check the health endpoint and the database connection.",
        ),
    ),
)

_NUMBERS: tuple[ErrorInfo, ...] = (
    _api(
        21211,
        400,
        "Invalid 'To' Phone Number",
        "The To value is not a phone number Pigeon can message. Pigeon parses it "
        "into E.164; when that fails, or the result is not a valid number in its "
        "country, the request is refused and nothing is stored.",
        (
            "No leading + and country code, so the digits read as another country's number, or as nothing at all.",
            "Too many or too few digits for the country.",
            "To is the same as From.",
            "To is a short code or an alphanumeric sender, which can only send.",
        ),
        (
            "Send To in E.164: +, country code, then the national number, without separators.",
            "Normalise numbers when you collect them rather than when you send.",
        ),
    ),
    _api(
        21212,
        400,
        "Invalid From Number (caller ID)",
        "The From value is neither an E.164 number, a short code, nor a well-formed alphanumeric sender ID.",
        (
            "A number in national format, without the country code.",
            "An alphanumeric sender over 11 characters, made only of digits, or "
            "holding characters outside letters, digits, space and - + _ &.",
        ),
        (
            "Use a sender listed by `pigeon numbers list`, written exactly as shown there.",
            "Or send with MessagingServiceSid and let the service's pool choose.",
        ),
    ),
    _api(
        21401,
        400,
        "Invalid Phone Number",
        "A phone-number parameter, other than a message's To or From, cannot be read as a phone number.",
        (
            "A number without its country code.",
            "Letters, an extension or stray characters in the value.",
        ),
        ("Write the number in E.164, e.g. +14155550100.",),
    ),
    _api(
        21402,
        400,
        "Invalid Url",
        "A URL setting on a number or a Messaging Service (SmsUrl, "
        "SmsFallbackUrl, StatusCallback, InboundRequestUrl...) is not an "
        "absolute http or https URL.",
        (
            "No scheme, or a relative path.",
            "A typo in the scheme, or spaces that are not encoded.",
        ),
        (
            "Give the whole URL, scheme and host included.",
            "Then check the endpoint with `pigeon doctor number NUMBER`, which sends it a signed test request.",
        ),
    ),
    _api(
        21403,
        400,
        "Invalid Method",
        "A method setting (SmsMethod, SmsFallbackMethod, InboundMethod...) is something other than GET or POST.",
        ("A value such as PUT or JSON, or an empty string.",),
        ("Use POST, the default, which keeps message text out of URLs and access logs, or GET.",),
    ),
    _api(
        21406,
        400,
        "Cannot set SmsFallbackUrl without setting SmsUrl",
        "A fallback is only called when the primary webhook fails, so Pigeon "
        "refuses a fallback URL on a number that has no primary one.",
        (
            "SmsFallbackUrl set on its own.",
            "SmsUrl cleared while the fallback stays set.",
        ),
        ("Set SmsUrl in the same request, or clear both together.",),
    ),
    _api(
        21407,
        400,
        "This Phone Number type does not support SMS",
        "The number has no SMS capability, so SMS settings on it would never be used.",
        ("A voice-only number, e.g. a landline taken from the inventory.",),
        (
            "Check the capabilities column of `pigeon numbers list`.",
            "Use an SMS-capable number for messaging.",
        ),
    ),
    _api(
        21408,
        400,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
        "The recipient's country is not among the destinations the account may send to (its geo "
        "permissions). Nothing was sent or charged.",
        (
            "The country was never enabled for the account, or for its parent (a subaccount "
            "without a list of its own follows its parent's).",
            "A wrong country code sends the message somewhere unexpected.",
            "A number of no country (+800, +882 and the like), which no list admits.",
            "The country was taken off the list while the message waited in the queue: it failed "
            "when a dispatcher reached it, instead of going out.",
        ),
        (
            "Check that To carries the country code you intended.",
            "If the destination is wanted, an operator adds it: pigeon accounts geo AC... --allow US,CA,GB.",
        ),
    ),
    _api(
        21421,
        400,
        "Phone Number is invalid",
        "The PhoneNumber asked for when buying is not written as a valid E.164 number.",
        ("A national format, a typo, or a number cut short.",),
        ("Search AvailablePhoneNumbers first and pass phone_number exactly as the search returned it.",),
    ),
    _api(
        21422,
        400,
        "PhoneNumber is not available",
        "The number asked for is not in this installation's inventory of numbers free to buy.",
        (
            "Another account, or this one, bought it already.",
            "The operator never loaded it into the inventory.",
            "The search result used was out of date.",
        ),
        (
            "Search again and pick a number from the fresh result.",
            "Operators: add the numbers your carrier assigned you to the inventory.",
        ),
    ),
    _api(
        21451,
        400,
        "Invalid area code",
        "AreaCode must be a three-digit North American area code.",
        (
            "A value of the wrong length, or not a number.",
            "A toll-free prefix used in a search for local numbers.",
        ),
        ("Pass a three-digit area code valid for the number type searched.",),
    ),
    _api(
        21452,
        400,
        "No phone numbers found in area code",
        "The inventory holds no free numbers in that area code.",
        ("Every number in that area is taken, or none was ever loaded.",),
        (
            "Search without AreaCode, or near the number you want (NearNumber, InRegion).",
            "Operators: load more numbers for that area into the inventory.",
        ),
    ),
)

_SENDING: tuple[ErrorInfo, ...] = (
    _api(
        21602,
        400,
        "Message body is required",
        "The message has nothing to send: no Body text, no MediaUrl and no ContentSid.",
        (
            "Body missing or empty, e.g. a template that rendered to nothing.",
            "The field sent as body instead of Body.",
        ),
        ("Provide Body, at least one MediaUrl, or a ContentSid.",),
    ),
    _api(
        21603,
        400,
        "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
        "Pigeon needs to know who sends: either a From sender or a Messaging Service whose pool will pick one.",
        (
            "Neither From nor MessagingServiceSid in the request.",
            "A misspelt field name, so the value was not seen.",
        ),
        ("Add From (one of the senders in `pigeon numbers list`) or MessagingServiceSid.",),
    ),
    _api(
        21604,
        400,
        "The destination 'To' phone number is required to send an SMS",
        "The request does not say whom to send to.",
        ("To missing or empty, or spelt to.",),
        ("Add To in E.164 format.",),
    ),
    _api(
        21606,
        400,
        "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination.",
        "Pigeon only sends from senders that belong to the account and can "
        "carry SMS to this recipient: a number with the SMS capability, an "
        "alphanumeric sender registered on the account, or a short code of the "
        "recipient's own country.",
        (
            "The From number is not on this account.",
            "The number lacks the SMS capability.",
            "A short code used towards a different country.",
            "An alphanumeric sender used towards a country that does not accept them, such as the US.",
        ),
        (
            "List usable senders and their capabilities with `pigeon numbers list`.",
            "Send through a Messaging Service whose pool has a suitable sender for each destination.",
        ),
    ),
    _api(
        21608,
        400,
        "The 'to' phone number provided is not yet verified for this account.",
        "A Trial account may only send to numbers verified for it. Pigeon keeps "
        "the rule for installations that hand out trial accounts, such as a "
        "shared demo server.",
        ("The account's type is Trial and the recipient is not verified.",),
        ("Verify the recipient for the account, or ask the operator to make it a Full account.",),
    ),
    _api(
        21609,
        400,
        "Invalid 'StatusCallback'",
        "The message's StatusCallback is not a usable http or https URL, or is longer than 4,000 characters.",
        (
            "A relative URL, another scheme, or a typo.",
            "A URL swollen by query parameters.",
        ),
        (
            "Pass an absolute http(s) URL; keep per-message data short, or look "
            "it up by MessageSid when the callback arrives.",
        ),
    ),
    _api(
        21610,
        400,
        "Attempt to send to unsubscribed recipient",
        "The recipient texted an opt-out keyword (STOP, UNSUBSCRIBE and the "
        "like) to this sender, or to any sender of the same Messaging Service, "
        "and has not opted back in. Pigeon refuses the message and stores and "
        "charges nothing; a message accepted before the opt-out and still "
        "waiting to go out (scheduled, queued) fails with this code instead, "
        "uncharged.",
        (
            "The recipient replied STOP, or a similar opt-out keyword.",
            "The sender is in a Messaging Service, so an opt-out sent to any of its senders covers all of them.",
        ),
        (
            "Stop sending to this recipient from this sender or service.",
            "`pigeon doctor` shows the opt-out behind it: keyword, time, the inbound message and the scope.",
            "Only the recipient can lift it, by texting START, YES or UNSTOP to the same sender.",
        ),
    ),
    _api(
        21611,
        400,
        "This 'From' number has exceeded the maximum number of queued messages",
        "The sender's queue already holds more than it can send within the "
        "queue limit (hours of traffic at the sender's pace), so Pigeon refuses "
        "more rather than accept messages it could not send in time.",
        (
            "Bulk sends faster than the sender's pace, e.g. one segment a second on a US long code.",
            "Long bodies: every segment counts against the pace.",
            "The carrier is slow, throttling or unbound, so the queue does not drain.",
        ),
        (
            "Submit at about the rate the sender can send.",
            "Spread the load over a Messaging Service with several senders.",
            "Check the carrier binds and throttling in the dispatcher's logs and metrics.",
        ),
    ),
    _api(
        21612,
        400,
        "The 'To' phone number is not currently reachable via SMS",
        "No configured carrier route can take a message from this sender to this destination.",
        (
            "No carrier connector covers the destination's country or network.",
            "The route exists but is disabled.",
            "The sender type cannot reach it, e.g. a toll-free number abroad.",
        ),
        (
            "Check the carrier routing configuration; add a connector or a route for the destination.",
            "Try another sender, or a Messaging Service with several kinds.",
        ),
    ),
    _api(
        21614,
        400,
        "'To' number is not a valid mobile number",
        "The recipient is known not to take SMS, usually because it is a "
        "landline. Pigeon learns this from its number-type table or from what "
        "carriers answered earlier, not from the shape of the number.",
        (
            "A fixed-line number.",
            "A carrier already reported the number as a landline (30006).",
        ),
        (
            "Ask the recipient for a mobile number.",
            "If the number has become a mobile, have the operator clear the landline record for it.",
        ),
    ),
    _api(
        21617,
        400,
        "The concatenated message body exceeds the 1600 character limit",
        "The Body is longer than 1,600 characters. Characters that need UCS-2, "
        "emoji above all, weigh more than plain GSM-7 text, so a body that "
        "looks short enough can still be over.",
        (
            "Long text, or a template that pasted in more than expected.",
            "Emoji or other non-GSM characters in a long text.",
        ),
        (
            "Shorten the text, or send a link to the full content.",
            "Turn on smart encoding so look-alike characters stay GSM-7.",
        ),
    ),
    _api(
        21619,
        400,
        "Unable to create record",
        "The message had neither text nor media, so there was nothing to create.",
        ("Body empty and no MediaUrl, e.g. after a media list was filtered.",),
        ("Send text, media, or both.",),
    ),
    _api(
        21620,
        400,
        "Invalid media URL(s)",
        "At least one MediaUrl is not an absolute http or https URL.",
        (
            "A local file path or a data: URI.",
            "A relative or malformed URL.",
        ),
        ("Host the media where it can be fetched and pass its full URL.",),
    ),
    _api(
        21621,
        400,
        "The 'From' number has not been enabled for MMS",
        "The message carries media but the sender cannot send MMS.",
        ("A number without the MMS capability, or an alphanumeric sender.",),
        (
            "Send from an MMS-capable number (see `pigeon numbers list`).",
            "Or send a text with a link to the media.",
        ),
    ),
    _api(
        21623,
        400,
        "Number of media files exceeds allowed limit",
        "A message may carry at most ten MediaUrl values.",
        ("More than ten media URLs in one request.",),
        ("Send ten or fewer per message, or put the rest in a second one.",),
    ),
    _api(
        21624,
        400,
        "Invalid validity period value",
        "ValidityPeriod must be a whole number of seconds from 1 to 36,000 (ten hours).",
        ("Zero, a negative value, more than 36,000, or a value that is not an integer.",),
        ("Pass whole seconds within the range, or leave it out for the default of 36,000.",),
    ),
    _api(
        21654,
        400,
        "ContentSid Required",
        "ContentVariables only make sense with a content template, and the request named none.",
        ("ContentVariables sent without ContentSid.",),
        ("Add the template's ContentSid, or drop ContentVariables.",),
    ),
    _api(
        21655,
        400,
        "The ContentSid is Invalid",
        "The ContentSid does not name a content template this account can use.",
        ("A typo, a deleted template, or a template of another account.",),
        ("Check the template SID (HX...) and the account it belongs to.",),
    ),
    _api(
        21656,
        400,
        "The ContentVariables Parameter is invalid",
        "ContentVariables must be a JSON object whose keys are the template's "
        "placeholders and whose values are strings.",
        (
            "Text that is not valid JSON, or a JSON list instead of an object.",
            "Keys that the template does not define.",
        ),
        ('Send e.g. {"1": "Ada", "2": "Tuesday"}, with keys matching the template\'s placeholders.',),
    ),
    _api(
        21659,
        400,
        "'From' is not a Twilio phone number or Short Code country mismatch",
        "The From value is not a sender that this Pigeon installation hosts, "
        "or it is a short code of a different country than the recipient's.",
        (
            "A personal or outside number used as From.",
            "A number still being moved to the installation's carriers.",
            "A short code used towards another country.",
        ),
        (
            "Use a sender from `pigeon numbers list`.",
            "For short codes, send only to recipients of the code's country.",
        ),
    ),
    _api(
        21660,
        400,
        "Mismatch between the 'From' number and the account",
        "The From sender is hosted here, but by another account or subaccount than the one sending.",
        (
            "Credentials of one subaccount used with another's number.",
            "The number moved to another account and the application still uses the old credentials.",
        ),
        ("Send with the credentials of the account that owns the number, or move the number to the sending account.",),
    ),
    _api(
        90007,
        400,
        "Invalid validity period value",
        "Twilio's newer code for a ValidityPeriod out of range. Pigeon reports "
        "that case as 21624 and lists this code so it can be looked up.",
        ("ValidityPeriod outside 1 to 36,000 seconds.",),
        ("See 21624.",),
    ),
)

_SERVICES: tuple[ErrorInfo, ...] = (
    _api(
        21701,
        404,  # as Twilio's dictionary gives it, though most 21xxx are 400
        "The Messaging Service does not exist",
        "No Messaging Service with that SID exists for this account.",
        ("A typo, a deleted service, or a service of another account.",),
        ("List the account's services and use one of their SIDs (MG...).",),
    ),
    _api(
        21702,
        400,
        "The Messaging Service is not available to send new messages",
        "The service exists but may not take new messages now.",
        ("The service, or the account that owns it, is disabled.",),
        ("Check the service's and the account's state in the console.",),
    ),
    _api(
        21703,
        400,
        "The Messaging Service does not have a phone number available to send a message",
        "The service has senders, but none of them fits this recipient.",
        (
            "No sender in the pool can reach the destination country.",
            "The message needs a capability, such as MMS, that no sender in the pool has.",
        ),
        (
            "Add a sender suited to the destination to the pool.",
            "Check the pool with `pigeon numbers list`.",
        ),
    ),
    _api(
        21704,
        400,
        "The Messaging Service contains no phone numbers",
        "The service's sender pool is empty, so it has nothing to send from.",
        ("The numbers were never added, or were all removed or released.",),
        ("Add numbers, short codes or alphanumeric senders to the pool.",),
    ),
    _api(
        21705,
        400,
        "The Messaging Service is invalid",
        "The MessagingServiceSid is not a well-formed service SID: MG followed by 32 hexadecimal digits.",
        ("A truncated value, or the SID of some other resource.",),
        ("Copy the service SID exactly.",),
    ),
    _api(
        21710,
        400,
        "Phone Number Already Exists in Messaging Service",
        "The sender is already in this service's pool; nothing changed.",
        ("The same add was sent twice, e.g. by a retried set-up script.",),
        ("Nothing to fix; treat it as success in set-up scripts.",),
    ),
    _api(
        21711,
        400,
        "Phone Number, Shortcode, or AlphaSender is not associated to the specified Messaging Service.",
        "The sender named is not in this service's pool.",
        ("A sender of another service, or one already removed.",),
        ("List the service's senders before changing or removing one.",),
    ),
    _api(
        21712,
        400,
        "Phone Number or Short Code is associated with another Messaging Service.",
        "A number or short code can belong to one service only, and this one is in another already.",
        ("The sender was added to a different service before.",),
        ("Remove it from the other service first, then add it here.",),
    ),
    _api(
        21713,
        400,
        "Messaging Service Use Case is Invalid",
        "Usecase must be one of notifications, marketing, verification, discussion, poll or undeclared.",
        ("Another value, or a typo.",),
        ("Pick one of the listed values.",),
    ),
    _api(
        21715,
        400,
        "Phone Number Does Not Have Correct Messaging Service Capabilities",
        "A number in a Messaging Service's pool must be able to take SMS or MMS; this one can do neither.",
        ("A voice-only number (from the inventory, or added with pigeon numbers add --no-sms --no-mms).",),
        (
            "Check the capabilities column of `pigeon numbers list`.",
            "Put an SMS-capable number into the service instead.",
        ),
    ),
    _api(
        21714,
        400,
        "Messaging Service Number Pool size limit reached",
        "The service's sender pool is full, or it has its one alphanumeric sender already.",
        (
            "The pool already holds as many senders as allowed (400).",
            "An alphanumeric sender was added to a service that has one: a service takes a single one.",
        ),
        (
            "Remove unused senders, or split the traffic over a second service.",
            "To change the service's alphanumeric sender, remove the old one first.",
        ),
    ),
)

# Twilio documents 35114, 35115 and 35117 with the same name and the same
# window. Pigeon tells them apart: 35114 for a SendAt it cannot read, 35115 for
# one too soon (or past), 35117 for one too far ahead.
_SCHEDULING: tuple[ErrorInfo, ...] = (
    _api(
        35111,
        400,
        "SendAt timestamp is missing",
        "ScheduleType=fixed asks Pigeon to send later, but the request does not say when.",
        ("ScheduleType given without SendAt.",),
        ("Add SendAt as a UTC timestamp, e.g. 2030-01-31T09:00:00Z, or drop ScheduleType to send now.",),
    ),
    _api(
        35114,
        400,
        "Scheduling does not support this timestamp",
        "Pigeon cannot read SendAt as a UTC timestamp.",
        ("Another format, a local time without Z, or a date without a time.",),
        ("Send SendAt as YYYY-MM-DDTHH:MM:SSZ in UTC.",),
    ),
    _api(
        35115,
        400,
        "Scheduling does not support this timestamp",
        "SendAt is too soon: a scheduled message must be due at least five minutes (300 seconds) after the request.",
        (
            "A SendAt in the past or only minutes ahead.",
            "A SendAt computed close to the minimum, then delayed on its way.",
        ),
        ("Schedule further ahead with a margin, or send now without ScheduleType.",),
    ),
    _api(
        35117,
        400,
        "Scheduling does not support this timestamp",
        "SendAt is too far ahead: at most 35 days (3,024,000 seconds) after the request.",
        ("A date beyond 35 days, often a wrong year or month.",),
        (
            "Keep SendAt within 35 days; hold longer schedules in your own "
            "system and create the message nearer the time.",
        ),
    ),
    _api(
        35118,
        400,
        "MessagingServiceSid is required to schedule a message",
        "Only messages sent through a Messaging Service can be scheduled.",
        ("ScheduleType and SendAt used with a bare From.",),
        ("Send with MessagingServiceSid instead of From.",),
    ),
)

_DELIVERY: tuple[ErrorInfo, ...] = (
    _dlr(
        30001,
        "Queue overflow",
        "The message waited in its sender's queue until Pigeon gave up on it: "
        "more was submitted for the sender, or the service's pool, than it "
        "could send at its pace.",
        (
            "A burst well beyond the sender's pace.",
            "The carrier throttling submissions, which slows the queue down.",
            "The carrier unbound for a long time.",
        ),
        (
            f"{_DOCTOR}: how long it queued and why.",
            "Pace submissions, or add senders to the Messaging Service.",
            "Check the carrier's binds and throttle settings.",
        ),
    ),
    _dlr(
        30002,
        "Account suspended",
        "The account was suspended or closed after the message was accepted and "
        "before it went to a carrier, so Pigeon failed it instead of sending it. "
        "It cost nothing.",
        ("An operator or the parent account suspended or closed the account.",),
        ("Reactivate a suspended account (a closed one cannot be), then send the message again.",),
    ),
    _dlr(
        30003,
        "Unreachable destination handset",
        "The carrier took the message but could not get it to the phone before "
        "it gave up: the phone was off, out of coverage, or not found on the "
        "network at the time.",
        (
            "Phone switched off, in flight mode or without signal.",
            "Roaming on a network that does not pass the message on.",
            "Trouble on the carrier's side, when many numbers fail at once.",
        ),
        (
            "Try again later, hours rather than seconds.",
            f"{_DOCTOR} and the carrier's raw receipt.",
            "If many recipients on one network fail together, suspect the route rather than the phones.",
            "Rehearse the handling with the simulator's scripted outcomes.",
        ),
    ),
    _dlr(
        30004,
        "Message blocked",
        "The carrier refused delivery because the recipient or their network blocks this traffic.",
        (
            "The recipient blocked the sender, or bars messages from short codes or businesses.",
            "The line cannot receive SMS, e.g. some prepaid or data-only plans.",
        ),
        (
            "Do not retry in a loop; confirm with the recipient.",
            f"{_DOCTOR} and the carrier's raw status.",
        ),
    ),
    _dlr(
        30005,
        "Unknown destination handset",
        "The network reports that the number does not exist or is no longer in service.",
        (
            "A disconnected or reassigned number.",
            "A typo that still looks like a valid number.",
        ),
        (
            "Stop sending to the number and confirm it with the user.",
            "Retrying will not help.",
        ),
    ),
    _dlr(
        30006,
        "Landline or unreachable carrier",
        "The number cannot take SMS: most often it is a fixed line, sometimes "
        "a network the route does not reach (short codes especially).",
        (
            "A landline.",
            "A destination network the carrier has no agreement with.",
        ),
        (
            "Ask for a mobile number. Once Pigeon has learnt a number is a "
            "landline, later sends to it may be refused up front with 21614.",
            "For short codes, check which networks the code is provisioned on.",
        ),
    ),
    _dlr(
        30007,
        "Message filtered",
        "A carrier, or a filter on the way, judged the content or the sending "
        "pattern unwanted and dropped the message.",
        (
            "Spam-like wording, link shorteners, or text that differs between messages only by a code.",
            "Traffic from a sender that is not registered for its use (US 10DLC, toll-free).",
            "Sudden high volume from a new sender.",
        ),
        (
            "Register the sender and campaign with the carriers where required.",
            "Use full-domain links and a consistent sender; ramp volume up gradually.",
            "Do not rotate senders to get around filtering.",
        ),
    ),
    _dlr(
        30008,
        "Unknown error",
        "The carrier reported a failure without a reason Pigeon can map, or "
        "Pigeon gave up on the submission for a reason no other code covers.",
        (
            "A receipt status or error value Pigeon has no mapping for.",
            "A carrier answer to the submission that Pigeon does not know.",
            "Retries used up after repeated unclassified failures.",
        ),
        (
            f"{_DOCTOR} and the carrier's raw answer.",
            "If one raw code keeps coming back, add a mapping for it in the carrier's configuration, or report it.",
            "A single retry is reasonable.",
        ),
    ),
    _dlr(
        30010,
        "Message price exceeds max price",
        "Twilio failed a message that would have cost more than its MaxPrice. Twilio retired "
        "MaxPrice in 2024 and Pigeon does not take it, so Pigeon never reports this code; it is "
        "listed so that a code seen in older Twilio logs can be looked up.",
        (
            "MaxPrice set low.",
            "A costly destination, or a long text split into several segments.",
        ),
        ("Drop MaxPrice from the request.",),
    ),
    _dlr(
        30011,
        "MMS not supported by the receiving phone number in this region",
        "The recipient's network or phone cannot take MMS, no carrier routed for it carries media, or "
        "the sender cannot send MMS; and nothing sent the media as links instead.",
        (
            "MMS sent to a country or network without MMS support.",
            "Every carrier routed for the recipient is an SMPP carrier: SMPP carries text only.",
            "A Messaging Service with MmsConverter off gave a sender that cannot send MMS (a number "
            "without the capability, a short code or an alphanumeric sender), or the sending number "
            "lost MMS after the message was accepted.",
        ),
        (
            "Send an SMS with a link to the media instead.",
            "Send through a Messaging Service with MmsConverter on: the media then go as links.",
            "Route the recipient to a carrier that carries MMS.",
            "Send from an MMS-capable number (in a Messaging Service, have one in its pool).",
        ),
    ),
    _dlr(
        30019,
        "Content size exceeds carrier limit",
        "The media is larger than the carrier passes on.",
        ("Large images or video, or many attachments together.",),
        ("Compress or resize the media, or send a link.",),
    ),
    _dlr(
        30022,
        "US A2P 10DLC - Rate Limits Exceeded",
        "A US carrier refused messages beyond the throughput registered for this 10DLC number or campaign.",
        ("Sending faster than the campaign's registered rate.",),
        ("Set the sender's rate limit in Pigeon to the registered throughput, so the dispatcher paces below it.",),
    ),
    _dlr(
        30023,
        "US A2P 10DLC - Daily Message Cap Reached",
        "The brand or campaign used up its daily allowance with a US carrier.",
        ("More messages today than the registration allows.",),
        ("Wait for the next day, or raise the cap through the registration.",),
    ),
    _dlr(
        30027,
        "US A2P 10DLC - T-Mobile Daily Message Limit Reached",
        "T-Mobile's daily limit for the brand was reached.",
        ("More messages to T-Mobile subscribers today than the brand's tier.",),
        ("Wait for the reset, or improve the brand's vetting tier.",),
    ),
    _dlr(
        30032,
        "Toll-Free Number Has Not Been Verified",
        "US and Canadian carriers block traffic from toll-free numbers that have not completed toll-free verification.",
        ("Sending from a toll-free number before its verification passed.",),
        ("Complete verification with the carrier that provides the number, and send from another sender meanwhile.",),
    ),
    _dlr(
        30034,
        "US A2P 10DLC - Message from an Unregistered Number",
        "US carriers block application traffic from local (10DLC) numbers "
        "that are not linked to a registered campaign.",
        ("The sender is not attached to an approved A2P campaign.",),
        ("Register brand and campaign, attach the number, and wait for approval before sending.",),
    ),
    _dlr(
        30036,
        "Validity Period Expired",
        "The message was still waiting to be sent when its ValidityPeriod ran "
        "out, so Pigeon failed it rather than deliver something stale.",
        (
            "A short ValidityPeriod on the message or its service.",
            "A backlog on the sender.",
            "The carrier down, unbound or throttling for a long time.",
        ),
        (
            f"{_DOCTOR}: when it was queued and what held it up.",
            "Give time-sensitive messages a period they can meet; pace bulk sends.",
        ),
    ),
    _dlr(
        30410,
        "Provider Timeout Error",
        "The carrier did not answer Pigeon's submission in time, and the "
        "retries ran out. The carrier may still have delivered it.",
        (
            "A slow or overloaded carrier connection.",
            "A network problem between Pigeon and the carrier.",
        ),
        (
            "Before resending, check with the recipient, or look for a late "
            "receipt in `pigeon doctor message SID`, to avoid a duplicate.",
            "Check the carrier's response times and the submit window size.",
        ),
    ),
    _dlr(
        30450,
        "Message delivery blocked",
        "Delivery was stopped because traffic to the destination looks like "
        "SMS pumping: fake sign-ups generating messages to costly numbers.",
        ("A sudden burst of verification or sign-up messages to one prefix or country.",),
        (
            "Look at recent sends to that prefix; protect sign-up forms against bots.",
            "The block lifts by itself after a while; legitimate users can try again then.",
        ),
    ),
)

_INBOUND: tuple[ErrorInfo, ...] = (
    ErrorInfo(
        30009,
        "Missing inbound segment",
        None,
        "inbound",
        "A long message from a phone arrived incomplete: Pigeon waited for the "
        "remaining parts, which never came, and kept what it had.",
        (
            "The carrier dropped or delayed one of the parts.",
            "The parts arrived over different binds without a common reference.",
        ),
        (
            "Ask the sender to send it again.",
            "If it happens often, check the carrier's handling of long messages in the inbound timeline.",
        ),
    ),
)

_HTTP = "Look at the webhook's alerts in the error log, or run `pigeon doctor number NUMBER` for an inbound URL"
_RETRIES = "Status callbacks are retried with backoff; an inbound message falls back to the fallback URL if one is set."

_WEBHOOKS: tuple[ErrorInfo, ...] = (
    _hook(
        11100,
        "Invalid URL format",
        "A URL in the application's TwiML (a <Redirect>) is no http(s) URL Pigeon can request, "
        "so the conversation ended there; the <Message>s before it were sent.",
        (
            "A bracket left open (http://[::1), a port out of range, or another scheme than http(s).",
            "A host name with an underscore, or blanks in the URL.",
        ),
        ("Give an absolute http(s) URL, or a path relative to the document's own URL.",),
    ),
    _hook(
        11200,
        "HTTP retrieval failure",
        "Pigeon called your webhook (the inbound URL or a status callback) and "
        "got no usable answer: an error status, a body it could not read, or "
        "the connection dropped.",
        (
            "A 4xx from your application: a wrong path, or your app refusing the signature.",
            "A 5xx from your application or a proxy in front of it.",
        ),
        (
            f"{_HTTP}; match the attempt in your app's logs by its I-Twilio-Idempotency-Token.",
            "If your app checks X-Twilio-Signature, it must use this Pigeon's URL and the account's AuthToken.",
            _RETRIES,
        ),
    ),
    _hook(
        11205,
        "HTTP connection failure",
        "Pigeon could not connect to the webhook's host, or the answer took "
        "longer than the time allowed (15 seconds overall).",
        (
            "The host is down, or a firewall drops Pigeon's connections.",
            "The application does slow work before answering.",
        ),
        (
            f"{_HTTP}.",
            "Answer at once and do slow work in the background.",
            _RETRIES,
        ),
    ),
    _hook(
        11206,
        "HTTP protocol violation",
        "The webhook's server answered with something that is not valid HTTP.",
        (
            "TLS spoken to a plain-HTTP port, or the reverse.",
            "A server or proxy closing the connection halfway through a response.",
        ),
        ("Check the scheme and port in the URL, and any proxy on the way.",),
    ),
    _hook(
        11210,
        "HTTP bad host name",
        "The webhook's host name does not resolve.",
        (
            "A typo in the host.",
            "A DNS record that is missing, or only resolves on another network.",
        ),
        ("Check the URL, and resolve the name from the machine that runs Pigeon's workers.",),
    ),
    _hook(
        11215,
        "HTTP too many redirects",
        "The incoming-message webhook answered with more than five HTTP redirects in a row; "
        "Pigeon stopped following them.",
        ("A redirect loop, e.g. between http and https, or a login page.",),
        ("Configure the final URL directly.",),
    ),
    _hook(
        11216,
        "HTTP invalid redirect",
        "The incoming-message webhook answered with a 3xx that Pigeon cannot follow. It follows "
        "301, 302, 303, 307 and 308 answers that name an http(s) URL in their Location header.",
        (
            "Another 3xx status, such as 300 or 304.",
            "A redirect without a Location header, or to a URL that is not http(s).",
        ),
        ("Configure the final URL directly, or answer with a redirect to an http(s) URL.",),
    ),
    _hook(
        11220,
        "SSL/TLS Handshake Error",
        "The TLS handshake with the webhook's server failed.",
        ("No cipher or protocol version in common, or a reset mid-handshake.",),
        ("Check the server's TLS configuration with a TLS client.",),
    ),
    _hook(
        11235,
        "Certificate Invalid - Domain Mismatch",
        "The webhook's TLS certificate was issued for another host name, so Pigeon would not send data to it.",
        (
            "A certificate for the bare domain served on a subdomain, or the reverse.",
            "The URL names the server by its IP address, which the certificate does not list.",
        ),
        ("Use the host name the certificate was issued for, or add this one to the certificate.",),
    ),
    _hook(
        11236,
        "Certificate Invalid - Certificate Expired",
        "The webhook's TLS certificate has expired, so Pigeon would not send data to it.",
        ("A certificate that was not renewed.",),
        ("Renew the certificate.",),
    ),
    _hook(
        11237,
        "Certificate Invalid - Could not find path to certificate",
        "Pigeon could not trace the webhook's certificate back to a trusted authority.",
        (
            "A self-signed certificate.",
            "The server not sending its intermediate certificates.",
        ),
        ("Serve the full chain, or add your private CA to the trust store of the machines that run Pigeon's workers.",),
    ),
    _hook(
        11750,
        "TwiML response body too large",
        "The webhook answered with more than 64 kB, which Pigeon will not parse.",
        ("A whole web page returned instead of TwiML.",),
        ("Return only a small <Response> document.",),
    ),
    _hook(
        12100,
        "Document parse failure",
        "The webhook's answer was declared XML but is not well-formed, so Pigeon could not read any TwiML from it.",
        (
            "Unescaped & or < in the message text.",
            "An HTML error page, or text before the XML.",
        ),
        (
            "Build the reply with a TwiML library, which escapes text for you.",
            "Answer 204, or an empty <Response/>, when there is nothing to send.",
        ),
    ),
    _hook(
        12200,
        "Schema validation warning",
        "The answer is well-formed XML but not valid TwiML for messaging; Pigeon skipped what it did not understand.",
        ("Unknown elements or attributes, or wrong letter case in them.",),
        ("Stick to <Response>, <Message> and <Redirect> and their attributes.",),
    ),
    _hook(
        12300,
        "Invalid Content-Type",
        "The webhook answered with a content type Pigeon cannot use as a reply.",
        ("JSON, or no Content-Type header at all.",),
        ("Answer text/xml (or application/xml) with TwiML, text/plain to reply with that text, or 204 for no reply.",),
    ),
    _hook(
        12400,
        "Internal Failure",
        "Pigeon failed while processing the webhook's answer.",
        ("A bug in Pigeon.",),
        ("Report it with the alert's details and the answer received.",),
    ),
    _hook(
        14101,
        'Invalid "To" attribute',
        "A <Message to=...> in the reply is not a number Pigeon can send to.",
        ("A malformed number or a short code.",),
        ("Use E.164, or leave it out to reply to the sender.",),
    ),
    _hook(
        14102,
        'Invalid "From" attribute',
        "A <Message from=...> is not one of this account's senders that can send SMS.",
        ("A number of another account, or one without the SMS capability.",),
        ("Leave it out to reply from the number that received the message.",),
    ),
    _hook(
        14103,
        "Invalid Body",
        "A <Message> or <Body> holds no usable text, or a <Media> no usable URL.",
        (
            "Empty text, or text that came out empty after trimming.",
            "A <Media> URL that is no http(s) URL.",
            "Markup inside <Body> or <Media>, such as <b>1234</b>: they hold plain text only.",
        ),
        ("Put the reply text inside <Message>, or leave the verb out; escape a < in the text as &lt;.",),
    ),
    _hook(
        14104,
        "Invalid Method attribute",
        "A method attribute in the reply is neither GET nor POST.",
        ("A typo or another verb.",),
        ("Use GET or POST, or leave it out for POST.",),
    ),
    _hook(
        14105,
        "Invalid statusCallback attribute",
        "A <Message action=...> or statusCallback=... is not a usable URL.",
        ("A malformed URL, or one with another scheme than http(s).",),
        ("Give an http(s) URL, absolute or relative to the URL of the document that holds it.",),
    ),
    _hook(
        14106,
        "Document retrieval limit reached",
        "One reply session followed too many <Redirect>s (more than 50), so Pigeon stopped.",
        ("Redirects that lead back to each other.",),
        ("Make the redirect chain end in a document without <Redirect>.",),
    ),
    _hook(
        14107,
        "SMS send rate limit exceeded",
        "Pigeon stopped sending replies between one pair of numbers because "
        "they were exchanging messages too fast, which usually means two "
        "automated systems are answering each other.",
        (
            "An auto-reply that answers another auto-responder.",
            "A webhook that replies to every message, including its own replies coming back.",
        ),
        ("Break the loop: do not auto-reply to automated senders, and stop after a few replies per conversation.",),
    ),
    _hook(
        14108,
        "From phone number not SMS capable",
        "The sender chosen for the reply cannot send SMS.",
        ("A voice-only number set as from=, or receiving the message.",),
        ("Reply from an SMS-capable number (`pigeon numbers list`).",),
    ),
    _hook(
        14109,
        "TwiML Reply message limit exceeded",
        "The reply asked for more than ten messages in answer to one inbound message; Pigeon sent the first ten.",
        ("Too many <Message> verbs in one <Response>.",),
        ("Combine the text into fewer messages.",),
    ),
    _hook(
        14110,
        "Invalid Verb for SMS Reply",
        "The reply used a verb that messaging does not support; only <Message> and <Redirect> are allowed.",
        ("Voice TwiML such as <Say> returned to an SMS webhook.",),
        ("Point the number's SMS URL at an endpoint that returns messaging TwiML.",),
    ),
)

_EXTRA_API: tuple[ErrorInfo, ...] = (
    _api(
        21709,
        400,
        "Alpha Sender ID is Invalid or Not Authorized for this Messaging Service",
        "An alphanumeric sender must be 1 to 11 characters of letters, digits, spaces and - + _ &, "
        "with at least one letter; anything else cannot be put in a Messaging Service's pool.",
        (
            "A sender longer than 11 characters, or one made only of digits (networks read those as numbers).",
            "Punctuation such as dots, commas or accented letters in the sender.",
        ),
        ("Shorten the sender or replace the characters, then add it again.",),
    ),
    _api(
        20422,
        400,
        "Invalid Parameter",
        "A parameter Pigeon knows was given a value it cannot use: a date it cannot read, a "
        "page size below one, a status an update cannot set, a body other than the empty "
        "string on a redaction.",
        (
            "A date filter in a format other than YYYY-MM-DD, ISO 8601 or RFC 2822.",
            "An update that tries to change a message's text instead of erasing it.",
            "A PageToken copied from another server or edited by hand.",
        ),
        ("Read the message in the error body: it names the parameter and the value it refused.",),
    ),
    _api(
        21470,
        400,
        "Invalid AccountSid",
        "A number can only be moved to an account named by its SID, AC followed by 32 hexadecimal "
        "characters; the AccountSid given is not one.",
        ("The parameter holds a name, a phone number SID or a truncated SID.",),
        ("Copy the SID of the main account or subaccount from GET /2010-04-01/Accounts.json.",),
    ),
    _api(
        21471,
        400,
        "Account does not exist",
        "The number was to move to an account that these credentials cannot find: none has that SID, "
        "or it is not the main account itself nor one of its subaccounts.",
        (
            "A typo in the AccountSid.",
            "An account of another customer, or a subaccount of another main account.",
        ),
        ("Move numbers only between a main account and its own subaccounts; list them with GET Accounts.json.",),
    ),
    _api(
        21472,
        400,
        "Account is not active",
        "A number only moves to an account that can use it: the account named is suspended or closed "
        "(or its main account is).",
        ("The subaccount was suspended or closed by its main account or by the operator.",),
        ("Make the subaccount active again first, or move the number to another account.",),
    ),
    _api(
        21474,
        403,
        "API User must be the parent account to transfer phone numbers.",
        "Moving a number from one account to another needs the main account's credentials; a "
        "subaccount cannot hand its number over, nor take one from its main account or a sibling.",
        ("The request was made with a subaccount's auth token or one of its API keys.",),
        ("Make the request with the main account's SID and auth token (or its API key).",),
    ),
    _api(
        21475,
        400,
        "Unable to update Status, invalid Status.",
        "An account's status can only be active, suspended or closed.",
        ("A typo in the Status value, or a value from another resource such as 'canceled'.",),
        ("Send Status=active, Status=suspended or Status=closed.",),
    ),
    _api(
        21476,
        400,
        "Unable to update Status for subaccount, parent account is suspended.",
        "While a main account is suspended its subaccounts act as suspended too, and their "
        "status cannot be changed: the main account has to be active again first.",
        ("An operator suspended the main account (pigeon accounts status AC… --suspend).",),
        ("Ask the operator to make the main account active again, then change the subaccount.",),
    ),
    _api(
        21477,
        400,
        "Unable to update Status for parent accounts",
        "A main account cannot suspend or close itself through the API; only its subaccounts "
        "can be suspended or closed this way.",
        ("The request names the main account's own SID with a Status change.",),
        ("Change the status of subaccounts only; an operator manages main accounts with the pigeon CLI.",),
    ),
    _api(
        21478,
        400,
        "Unable to update Status for subaccount, subaccount has been suspended by Twilio",
        "The operator of this Pigeon installation suspended the subaccount (where Twilio's "
        "answer says Twilio): its main account's credentials cannot change its status, "
        "to active or anything else, until the operator makes it active again. Nothing changed.",
        ("pigeon accounts status AC… --suspend, on the subaccount or on its main account with --with-subaccounts.",),
        ("Ask the operator to make it active again (pigeon accounts status AC… --activate).",),
    ),
    _api(
        21479,
        400,
        "Unable to update Status for subaccount, subaccount has been closed.",
        "A closed account stays closed, and gets no new credentials (auth token or API key). "
        "Its numbers were released when it was closed, back to the inventory; its history "
        "stays readable with its main account's credentials.",
        (
            "An attempt to set Status=active or suspended on a subaccount that was closed.",
            "pigeon accounts rotate-token or pigeon keys create for a closed account, or for a "
            "subaccount of a closed main account.",
        ),
        ("Create a new subaccount instead, and buy the numbers it needs.",),
    ),
    _api(
        30409,
        400,
        "This message cannot be canceled",
        "Only a message that is still scheduled can be canceled. Once it is queued, sending, "
        "sent or final, there is nothing left to cancel.",
        (
            "The message was created without SendAt, so it was never scheduled.",
            "Its SendAt passed and it already went to the queue.",
            "It was canceled before.",
        ),
        (f"{_DOCTOR} and its current status.",),
    ),
    _api(
        35126,
        400,
        "The ScheduleType value provided is not supported for this channel",
        "Scheduling only knows ScheduleType=fixed: the message goes out at the SendAt you give.",
        ("A ScheduleType other than 'fixed', or a misspelling of it.",),
        ("Send ScheduleType=fixed together with SendAt.",),
    ),
)

_USAGE_TRIGGERS: tuple[ErrorInfo, ...] = (
    _api(
        21502,
        400,
        "Invalid callback url",
        "A usage trigger's CallbackUrl must be an absolute http or https address: Pigeon calls it "
        "when the trigger fires, and could not use the one given.",
        (
            "A relative path, or an address without http:// or https:// in front.",
            "Another scheme (ftp:, mailto:) or a host name with spaces or characters a URL cannot hold.",
            "Characters in the query that were not percent-encoded.",
        ),
        (
            "Give the full address, scheme and host included, e.g. https://app.example.com/usage.",
            "Encode the query's values before you put them in the URL.",
        ),
    ),
)

_EVENT_STREAMS: tuple[ErrorInfo, ...] = (
    _api(
        91000,
        400,
        "Sink could not be created",
        "Pigeon refused the sink: a parameter it needs was missing, too long or not usable.",
        (
            "No Description, or one longer than the limit.",
            "A SinkType other than webhook: Pigeon streams events to webhook sinks only (no kinesis, segment or email).",
            "SinkConfiguration missing, not a JSON object, without a valid http or https destination, or with a "
            "method other than POST.",
        ),
        (
            "Send Description, SinkType=webhook and SinkConfiguration as JSON, e.g. "
            '{"destination": "https://app.example.com/events", "method": "POST"}.',
        ),
    ),
    _api(
        91001,
        400,
        "Sink could not be found",
        "The subscription names a sink this account does not have.",
        (
            "A SinkSid mistyped or copied from another account (a subaccount's sinks are its own).",
            "The sink was deleted.",
        ),
        ("List the account's sinks (GET /v1/Sinks) and use one of their SIDs, or create the sink first.",),
    ),
    _api(
        91004,
        400,
        "Test event cannot be found",
        "A sink is validated with the test_id of a test event, and this sink has had none.",
        ("Validate was called before Test.",),
        (
            "POST to the sink's Test endpoint, read the test_id from the event your destination receives, then "
            "POST it to Validate.",
        ),
    ),
    _api(
        91005,
        400,
        "Test ID is invalid",
        "The TestId given to Validate is not the one of the sink's latest test event.",
        (
            "A test_id from an older test: each new Test replaces the one before.",
            "A test_id taken from another sink's test event, or mistyped.",
        ),
        ("Use the test_id of the newest test event your destination received for this sink, or test it again.",),
    ),
    _api(
        91007,
        400,
        "Sink still in use",
        "A sink cannot be deleted while a subscription sends events to it.",
        ("One or more subscriptions name this sink.",),
        (
            "Delete those subscriptions first (list them with GET /v1/Subscriptions?SinkSid=DG...), or point "
            "them at another sink.",
        ),
    ),
    _api(
        91101,
        400,
        "Subscription could not be created",
        "Pigeon refused the subscription or the change to its event types.",
        (
            "No Description, no SinkSid, or a description longer than the limit.",
            "An entry of Types that is not a JSON object with a type (and optionally a schema_version).",
            "The same event type named twice, or added to a subscription that already has it.",
        ),
        ('Name each event type once, each as a JSON object, e.g. {"type": "com.twilio.messaging.message.sent"}.',),
    ),
    _api(
        91103,
        400,
        "Event type list is empty",
        "A subscription sends at least one event type: one without any would send nothing.",
        (
            "Types was not sent, or sent empty, when creating the subscription.",
            "Removing the last event type of a subscription.",
        ),
        (
            "Name at least one event type in Types.",
            "To stop a subscription's events altogether, delete the subscription.",
        ),
    ),
    _api(
        91104,
        400,
        "Event type not found",
        "The subscription names an event type, or a schema version of it, that Pigeon does not publish.",
        (
            "A misspelt type, or one of a product Pigeon does not implement (voice, video, ...).",
            "A schema_version above the newest one of that type.",
        ),
        ("List what Pigeon publishes with GET /v1/Types, and leave schema_version out to take the newest.",),
    ),
    _hook(
        93101,
        "Unable to deliver events to sink",
        "Pigeon gave up on an event for a webhook sink and dropped it; the events behind it still go out. "
        "A busy or broken destination (no answer, 408, 429, 5xx) is retried for about four hours with "
        "growing pauses; any other answer that is not 2xx fails the event at once.",
        (
            "The destination was down, unreachable, or too slow (it has five seconds to answer).",
            "It answered 5xx, 408 or 429 on every attempt.",
            "It answered 404, 401 or 403: a wrong destination URL, or an endpoint that wants credentials.",
        ),
        (
            "Look at the alert's request and response, and at the destination's own logs.",
            "Check that the destination answers a POST with 2xx within five seconds; test the sink "
            "(POST …/Sinks/DG.../Test) once it is fixed.",
        ),
    ),
)

_DEBUGGER: tuple[ErrorInfo, ...] = (
    ErrorInfo(
        79001,
        "Possible duplicate message",
        None,
        "debugger",
        "The account created a message with the same sender, recipient and body as "
        "one it created a few seconds earlier, and neither request carried an "
        "Idempotency-Key. Pigeon sent both: it cannot tell a deliberate repeat from "
        "an accidental one, so it warns instead of refusing.",
        (
            "Your application retried a POST after a timeout or a network error, and the first attempt had in fact succeeded.",
            "A job queue ran the same send job twice, or two workers picked up the same job.",
            "A user pressed a button twice, or a form was submitted twice.",
        ),
        (
            "Run `pigeon doctor duplicates --to NUMBER`: it lists each request behind the copies, with its time, source address and user agent.",
            "Send an Idempotency-Key header with each create, derived from your own record of the message; a retry with the same key returns the first message and sends nothing.",
        ),
    ),
)

CATALOGUE: Mapping[int, ErrorInfo] = _index(
    (
        *_ACCOUNT_AND_REQUEST,
        *_NUMBERS,
        *_SENDING,
        *_SERVICES,
        *_SCHEDULING,
        *_DELIVERY,
        *_INBOUND,
        *_WEBHOOKS,
        *_EXTRA_API,
        *_USAGE_TRIGGERS,
        *_EVENT_STREAMS,
        *_DEBUGGER,
    )
)
