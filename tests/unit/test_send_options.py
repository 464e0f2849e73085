"""Send parameters that ask for what Pigeon does not do are refused, not ignored."""

from __future__ import annotations

import pytest

from pigeon.domain.send_options import NAMES, refusal


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"ContentRetention": "retain", "AddressRetention": "RETAIN"},
        {"ContentRetention": "", "SendAsMms": "false", "ShortenUrls": "False", "ContentSid": ""},
        {"ApplicationSid": "AP" + "0" * 32, "StatusCallback": "https://hooks.example.com/s"},
        {"ProvideFeedback": "true", "MaxPrice": "0.5", "Attempt": "2"},  # Twilio's own tuning
    ],
)
def test_what_pigeon_does_anyway_is_taken(params: dict[str, str]) -> None:
    assert refusal(params) is None


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"ContentRetention": "discard"}, "ContentRetention=discard is not supported: Pigeon keeps"),
        ({"AddressRetention": "Obfuscate"}, "AddressRetention=Obfuscate is not supported"),
        ({"ContentRetention": "forget"}, "ContentRetention must be 'retain' or 'discard', not 'forget'."),
        ({"SendAsMms": "true"}, "SendAsMms=true is not supported"),
        ({"ShortenUrls": "True"}, "ShortenUrls=true is not supported"),
        ({"ContentSid": "HX" + "0" * 32}, "ContentSid is not supported"),
        ({"ApplicationSid": "AP" + "0" * 32}, "Give StatusCallback instead."),
    ],
)
def test_a_promise_pigeon_cannot_keep_is_refused(params: dict[str, str], said: str) -> None:
    problem = refusal(params)
    assert problem is not None and said in problem


def test_names_cover_every_parameter_read() -> None:
    assert set(NAMES) == {
        "ContentRetention",
        "AddressRetention",
        "SendAsMms",
        "ShortenUrls",
        "ContentSid",
        "ApplicationSid",
        "StatusCallback",
    }
