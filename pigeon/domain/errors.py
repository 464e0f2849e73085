"""Pigeon's exceptions: one tree with a single root.

    PigeonError                     anything Pigeon raises on purpose
    ├── ApiError                    a request refused with a Twilio error code
    │   ├── AuthenticationError     20003, HTTP 401, "Authenticate"
    │   └── NotFound                20404, HTTP 404
    ├── InvalidTransition           a guarded status change matched no row
    ├── IdempotencyKeyTaken         another request committed a message under the same key
    ├── StoreUnavailable            the database is unavailable; nothing was written
    ├── CarrierError                a carrier refused or failed a submission
    │   ├── CarrierRetryableError   worth another attempt later
    │   │   ├── CarrierUnavailable  no bind to the carrier; nothing was sent
    │   │   └── CarrierOutcomeUnknown  sent, never answered: the carrier may have it
    │   └── CarrierPermanentError   another attempt cannot succeed
    └── WebhookError                a webhook or status callback attempt failed

Each class's docstring is its default message. The API turns `ApiError` into
Twilio's error body in one place; the carrier and webhook adapters translate
their libraries' exceptions into `CarrierError` and `WebhookError` with
``raise ... from exc``. Codes, names and explanations live in
`pigeon.domain.error_catalogue`.
"""

from __future__ import annotations

from pigeon.domain.error_catalogue import explain, more_info_url
from pigeon.domain.segments import SubmitProgress

__all__ = [
    "ApiError",
    "AuthenticationError",
    "CarrierError",
    "CarrierOutcomeUnknown",
    "CarrierPermanentError",
    "CarrierRetryableError",
    "CarrierUnavailable",
    "IdempotencyKeyTaken",
    "InvalidTransition",
    "NotFound",
    "PigeonError",
    "StoreUnavailable",
    "WebhookError",
]


def _default_message(cls: type[BaseException]) -> str:
    docs = (klass.__doc__ for klass in cls.__mro__)
    return next(doc for doc in docs if doc).strip().splitlines()[0]


class PigeonError(Exception):
    """Pigeon could not do what was asked."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or _default_message(type(self))
        super().__init__(self.message)


class ApiError(PigeonError):
    """The request was refused."""

    def __init__(
        self,
        code: int,
        message: str | None = None,
        *,
        status: int | None = None,
        detail: str | None = None,
    ) -> None:
        info = explain(code)
        super().__init__(message or (info.name if info else None))
        self.code = code
        if status is None:
            status = info.http_status if info and info.http_status else 400
        self.status = status
        self.detail = detail

    @property
    def more_info(self) -> str:
        return more_info_url(self.code)


class AuthenticationError(ApiError):
    """Authenticate"""

    def __init__(
        self,
        detail: str = "Your AccountSid or AuthToken was incorrect.",
        *,
        message: str = "Authenticate",
    ) -> None:
        super().__init__(20003, message, status=401, detail=detail)


class NotFound(ApiError):
    """The requested resource was not found."""

    def __init__(self, resource: str) -> None:
        super().__init__(20404, f"The requested resource {resource} was not found")
        self.resource = resource


class InvalidTransition(PigeonError):
    """A guarded status change matched no row."""

    def __init__(self, sid: str, to_status: str) -> None:
        super().__init__(f"{sid} cannot move to {to_status}: it does not exist or its current status does not allow it")
        self.sid = sid
        self.to_status = to_status


class IdempotencyKeyTaken(PigeonError):
    """Another request committed a message under this Idempotency-Key first."""

    def __init__(self, account_sid: str, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} of {account_sid} is taken by another request")
        self.account_sid = account_sid
        self.key = key


class StoreUnavailable(PigeonError):
    """The database is unavailable; nothing was written.

    Raised when no connection could be made, the connection broke before the transaction got
    to its commit, or the database had no room left (a full disk), so the work can be tried
    again as it is. A connection lost during the commit itself is not this error: whether
    that commit took effect is unknown."""

    #: Seconds a client is asked to wait before it tries again (Retry-After, API and console).
    retry_after = 1


class CarrierError(PigeonError):
    """The carrier refused or failed the submission."""

    retryable: bool = False

    def __init__(
        self,
        message: str | None = None,
        *,
        carrier_code: str | None = None,
        error_code: int = 30008,
    ) -> None:
        if message is None and carrier_code is not None:
            message = f"{_default_message(type(self))} [{carrier_code}]"
        super().__init__(message)
        self.carrier_code = carrier_code
        self.error_code = error_code
        #: Set by carriers that send parts one by one: which parts the carrier took before
        #: this error. When some were accepted, the message is partly out, and those parts'
        #: receipts must still find it.
        self.progress: SubmitProgress | None = None

    @property
    def accepted_carrier_ids(self) -> tuple[str, ...]:
        """Carrier ids of the parts accepted before the error (see `progress`)."""
        return self.progress.accepted_ids if self.progress is not None else ()

    @property
    def stops_route(self) -> bool:
        """Whether this refusal ends the attempt at every carrier of the route, not only at this one.

        The rule: a *permanent* refusal whose Twilio code is about the recipient or the content
        (`RECIPIENT_VERDICTS`: the handset is unknown, unreachable, a landline or blocks the
        traffic, the recipient opted out, the content was filtered) would be the same at any
        carrier, so the message fails at once. Every other refusal is about *this* carrier: the
        sender is not valid with it (21606), the text exceeds its limits (30019), or it gave no
        reason Pigeon knows (30008, unmapped ESME statuses); the next carrier of the route is
        tried, which is what a second carrier is for. A retryable refusal never stops the route.
        (Parts accepted before a refusal hold the message at that carrier whatever the code:
        see `pigeon.app.dispatch_jobs`.)"""
        return not self.retryable and self.error_code in RECIPIENT_VERDICTS


#: Twilio codes of refusals that concern the recipient or the content rather than the
#: carrier that gave them (`CarrierError.stops_route`).
RECIPIENT_VERDICTS = frozenset(
    {
        21610,  # the recipient opted out
        21614,  # not a mobile number
        30003,  # unreachable handset
        30004,  # blocked by the recipient or their network
        30005,  # unknown handset
        30006,  # landline
        30007,  # content filtered
    }
)


class CarrierRetryableError(CarrierError):
    """The carrier cannot take the submission now; try again later."""

    retryable = True


class CarrierUnavailable(CarrierRetryableError):
    """No connection to the carrier is bound; the submission was not sent."""


class CarrierOutcomeUnknown(CarrierRetryableError):
    """The submission was sent and no answer came: the carrier may have accepted it.

    Sending it again, to this carrier or another, may deliver it twice. ``may_fail_over`` is
    the carrier's operator setting: whether the dispatcher may move the message to the next
    carrier of its route at once (accepting that risk) instead of retrying this carrier only.
    When the retries run out the message fails with 30410 (Provider Timeout Error), whose
    explanation warns that the carrier may have delivered it after all.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        carrier_code: str | None = None,
        error_code: int = 30410,
        may_fail_over: bool = False,
    ) -> None:
        super().__init__(message, carrier_code=carrier_code, error_code=error_code)
        self.may_fail_over = may_fail_over


class CarrierPermanentError(CarrierError):
    """The carrier rejected the submission; trying again cannot help."""

    retryable = False


class WebhookError(PigeonError):
    """The webhook did not accept the request."""

    def __init__(
        self,
        error_code: int,
        detail: str,
        *,
        retryable: bool,
        status: int | None = None,
    ) -> None:
        info = explain(error_code)
        name = info.name if info else f"Error {error_code}"
        super().__init__(f"{name}: {detail}")
        self.error_code = error_code
        self.detail = detail
        self.retryable = retryable
        self.status = status
