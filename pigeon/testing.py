"""Fakes of the outbound ports, shipped with the package for tests and demos."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from pigeon.domain.errors import WebhookError
from pigeon.ports import WebhookRequest, WebhookResponse


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


#: What a scripted receiver does with one request: answer with a status code or a full
#: response, or fail without answering (raise the WebhookError).
Answer = int | WebhookResponse | WebhookError


class RecordingWebhookSender:
    """A WebhookSender that records every request and answers from a script.

    `script` is either a list of answers used in order (then `default` for every request after
    the last), or a function of the request. An `int` answers with that status and an empty
    body; a `WebhookError` is raised as the real sender does when no response came back.
    """

    def __init__(
        self,
        script: Iterable[Answer] | Callable[[WebhookRequest], Answer] = (),
        *,
        default: Answer = 200,
    ) -> None:
        self.requests: list[WebhookRequest] = []
        self._answer: Callable[[WebhookRequest], Answer]
        if callable(script):
            self._answer = script
        else:
            queue = list(script)
            self._answer = lambda _request: queue.pop(0) if queue else default

    async def send(self, request: WebhookRequest) -> WebhookResponse:
        self.requests.append(request)
        answer = self._answer(request)
        if isinstance(answer, WebhookError):
            raise answer
        if isinstance(answer, WebhookResponse):
            return answer
        return WebhookResponse(status=answer, headers={}, body=b"", elapsed_ms=1.0)

    def params(self, index: int = -1) -> dict[str, str]:
        """The parameters of a recorded request (the last by default), as a dict."""
        return dict(self.requests[index].params)
