"""Every URL a user sets for Pigeon to call is kept as it goes on the wire: what is not ASCII
in it percent-encoded as UTF-8 (`domain.urls.ascii_url`), so that the request line and the
signature agree on it. Before, a number's, a service's and a sink's URLs were kept raw, and
went out as raw UTF-8 (receivers answer 400) signed over a URL no receiver sees."""

from __future__ import annotations

import pytest

from pigeon.app import numbers, services
from pigeon.domain.events import parse_sink_configuration

RAW = "https://hooks.example.com/status/café?q=ü&x=%2F"
ENCODED = "https://hooks.example.com/status/caf%C3%A9?q=%C3%BC&x=%2F"


@pytest.mark.parametrize("param", ["SmsUrl", "SmsFallbackUrl", "StatusCallback", "VoiceUrl"])
def test_a_numbers_urls_are_kept_encoded(param: str) -> None:
    column = numbers.URL_PARAMS[param]
    assert numbers.settings_from_params({param: RAW})[column] == ENCODED
    assert numbers.settings_from_params({param: ENCODED})[column] == ENCODED  # as given, once encoded
    assert numbers.settings_from_params({param: ""})[column] is None


@pytest.mark.parametrize("param", ["InboundRequestUrl", "FallbackUrl", "StatusCallback"])
def test_a_services_urls_are_kept_encoded(param: str) -> None:
    [value] = services.settings_from_params({param: f" {RAW} "}).values()
    assert value == ENCODED


def test_a_sinks_destination_is_kept_encoded() -> None:
    config = parse_sink_configuration('{"destination": "https://hooks.example.com/status/café?q=ü&x=%2F"}')
    assert config.destination == ENCODED
