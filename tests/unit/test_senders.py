"""A Messaging Service's choice of sender: Twilio's order, and for a message with media the
first sender of that order that can send MMS."""

from __future__ import annotations

from typing import Any

from pigeon.domain.senders import choose_sender

TO = "+14155557060"


def number(phone_number: str, *, mms: bool, country: str = "US") -> dict[str, Any]:
    return {"phone_number": phone_number, "iso_country": country, "mms_capable": mms}


SHORT = number("55124", mms=False)
TEXT_ONLY = number("+14155550181", mms=False)
PICTURES = number("+14155550182", mms=True)
POOL = [SHORT, TEXT_ONLY, PICTURES]


def test_a_text_follows_twilios_order() -> None:
    assert choose_sender(POOL, TO) == "55124"  # a short code of the recipient's country first
    assert choose_sender([TEXT_ONLY, PICTURES], TO) == "+14155550181"
    assert choose_sender(POOL, TO, sticky="+14155550181") == "+14155550181"


def test_media_goes_from_the_first_sender_that_can_send_mms() -> None:
    assert choose_sender(POOL, TO, media=True) == "+14155550182"
    # A sticky sender that cannot send MMS does not hold a message with media...
    assert choose_sender(POOL, TO, sticky="+14155550181", media=True) == "+14155550182"
    # ...and neither do alphanumeric senders, which never can.
    assert choose_sender(POOL, "+447700900126", alpha_senders=["Pigeon"], media=True) == "+14155550182"
    assert choose_sender(POOL, "+447700900126", alpha_senders=["Pigeon"]) == "Pigeon"


def test_media_with_no_mms_sender_is_chosen_as_a_text_would_be() -> None:
    assert choose_sender([SHORT, TEXT_ONLY], TO, media=True) == "55124"
