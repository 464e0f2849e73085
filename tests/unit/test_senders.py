"""A Messaging Service's choice of sender: Twilio's order, new recipients spread over the
senders that are equally good for them, and for a message with media the first sender of that
order that can send MMS."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pigeon.domain.senders import choose_sender, sender_choices, spread

TO = "+14155557060"


def number(phone_number: str, *, mms: bool = False, country: str = "US") -> dict[str, Any]:
    return {"phone_number": phone_number, "iso_country": country, "mms_capable": mms}


SHORT = number("55124")
TEXT_ONLY = number("+14155550181")
PICTURES = number("+14155550182", mms=True)
POOL = [SHORT, TEXT_ONLY, PICTURES]
LONG_CODES = [number(f"+1415555010{i}") for i in range(1, 4)]
NAMES = [n["phone_number"] for n in LONG_CODES]


def recipients(count: int, prefix: str = "+1415556") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(count)]


def test_a_text_follows_twilios_order() -> None:
    assert choose_sender(POOL, TO) == "55124"  # a short code of the recipient's country first
    assert choose_sender([TEXT_ONLY, PICTURES], TO) in {"+14155550181", "+14155550182"}
    assert choose_sender(POOL, TO, sticky="+14155550181") == "+14155550181"
    assert choose_sender(POOL, "+447700900126", alpha_senders=["Pigeon"]) == "Pigeon"
    assert choose_sender([number("+447700900100", country="GB")], TO) == "+447700900100"  # any long code
    assert choose_sender([SHORT], "+447700900126") is None  # a short code never crosses a border
    assert sender_choices([], TO) == []


def test_new_recipients_spread_evenly_over_equally_good_senders() -> None:
    chosen = Counter(choose_sender(LONG_CODES, to) for to in recipients(3000))
    assert set(chosen) == set(NAMES)
    assert all(800 <= count <= 1200 for count in chosen.values()), chosen


def test_a_recipient_keeps_its_sender_while_the_pool_is_the_same() -> None:
    for to in recipients(50):
        first = choose_sender(LONG_CODES, to)
        assert choose_sender(list(reversed(LONG_CODES)), to) == first  # the order read does not matter
        assert choose_sender(LONG_CODES, to) == first


def test_the_choice_is_the_same_in_every_process() -> None:
    """A stable hash, not Python's salted `hash()`: pinned values."""
    assert spread(NAMES, "+14155557060") == ["+14155550101", "+14155550102", "+14155550103"]
    assert spread(NAMES, "+14155557061") == ["+14155550103", "+14155550101", "+14155550102"]
    assert spread(["+14155550101"], "+14155557061") == ["+14155550101"]


def test_the_other_equally_good_senders_follow_as_fallbacks() -> None:
    for to in recipients(20):
        choices = sender_choices(LONG_CODES, to)
        assert sorted(choices) == NAMES and choices == spread(NAMES, to)
    # Only the first tier that has senders: a short code leaves no long code to fall back on.
    assert sender_choices([*LONG_CODES, SHORT, number("55125")], TO) in (["55124", "55125"], ["55125", "55124"])


def test_short_codes_spread_too() -> None:
    codes = [number(f"5512{i}") for i in range(4)]
    assert len({choose_sender([*codes, *LONG_CODES], to) for to in recipients(200)}) == 4


def test_geomatch_spreads_over_the_numbers_of_the_recipients_area_code() -> None:
    local = [number("+12125550101"), number("+12125550102")]
    pool = [*LONG_CODES, *local]
    chosen = {choose_sender(pool, to, area_code_geomatch=True) for to in recipients(200, prefix="+1212556")}
    assert chosen == {"+12125550101", "+12125550102"}
    assert sorted(sender_choices(pool, "+12125560000", area_code_geomatch=True)) == ["+12125550101", "+12125550102"]
    # Without geomatch, or without a number of the area code, every long code of the country.
    assert len({choose_sender(pool, to) for to in recipients(200, prefix="+1212556")}) == 5
    assert sorted(sender_choices(LONG_CODES, "+12125560000", area_code_geomatch=True)) == NAMES


def test_the_sticky_sender_wins_then_what_a_new_recipient_would_get() -> None:
    sticky = "+14155550103"
    to = next(t for t in recipients(50) if choose_sender(LONG_CODES, t) != sticky)
    choices = sender_choices(LONG_CODES, to, sticky=sticky)
    assert choices[0] == sticky and sorted(choices) == NAMES
    assert choices[1:] == [s for s in spread(NAMES, to) if s != sticky]
    # A sticky sender that left the pool holds nothing.
    assert sender_choices(LONG_CODES, to, sticky="+14155559999") == spread(NAMES, to)
    assert sender_choices(LONG_CODES, "+447700900126", sticky="Pigeon", alpha_senders=["Pigeon"])[0] == "Pigeon"


def test_a_pool_with_several_alpha_senders_uses_its_oldest_first() -> None:
    assert sender_choices([], "+447700900126", alpha_senders=["Old", "New"]) == ["Old", "New"]


def test_media_goes_from_the_first_sender_that_can_send_mms() -> None:
    assert choose_sender(POOL, TO, media=True) == "+14155550182"
    # A sticky sender that cannot send MMS does not hold a message with media...
    assert choose_sender(POOL, TO, sticky="+14155550181", media=True) == "+14155550182"
    # ...and neither does a short code of the recipient's country, which never can here.
    assert choose_sender([SHORT, PICTURES, number("+14155550183", mms=True)], TO, media=True) != "55124"


def test_media_with_no_mms_sender_is_chosen_as_a_text_would_be() -> None:
    assert choose_sender([SHORT, TEXT_ONLY], TO, media=True) == "55124"


GB_PICTURES = number("+447700900101", mms=True, country="GB")
GB = "+447700900126"


def test_media_never_takes_a_sender_from_further_down_than_the_text_would() -> None:
    """The MMS preference stays in the tier the text goes from: a recipient with a sender of its
    own country (or an alphanumeric sender it takes) is not texted from abroad for its media."""
    # A US recipient of a US short code and a GB number that can send MMS: the short code.
    assert sender_choices([number("12345"), GB_PICTURES], TO, media=True) == ["12345"]
    # A GB recipient of a GB number that cannot send MMS and a US one that can: the GB number.
    assert choose_sender([number("+447700900102", country="GB"), PICTURES], GB, media=True) == "+447700900102"
    # A GB recipient of an alphanumeric sender: it, rather than an MMS number of another country...
    assert choose_sender(POOL, GB, alpha_senders=["Pigeon"], media=True) == "Pigeon"
    assert choose_sender(POOL, GB, alpha_senders=["Pigeon"]) == "Pigeon"
    # ...or a number of its own country that can send MMS, before that alphanumeric sender.
    assert choose_sender([*POOL, GB_PICTURES], GB, alpha_senders=["Pigeon"], media=True) == "+447700900101"


def test_media_with_only_foreign_long_codes_takes_one_that_can_send_mms() -> None:
    """With no sender of the recipient's country the text goes from any long code: among
    those, one that can send MMS; never a short code, which does not cross a border."""
    pool = [number("55124", mms=True), TEXT_ONLY, PICTURES, number("+14155550183", mms=True)]
    assert sorted(sender_choices(pool, GB, media=True)) == ["+14155550182", "+14155550183"]


def test_media_within_the_country_still_follows_area_code_geomatch() -> None:
    local = number("+12125550101", mms=True)
    pool = [PICTURES, local, number("+12125550102")]
    assert sender_choices(pool, "+12125560000", media=True, area_code_geomatch=True) == ["+12125550101"]


def test_a_sticky_sender_that_can_send_mms_keeps_the_recipient_wherever_it_is() -> None:
    """The text would go from it too: the recipient keeps the number it heard from."""
    choices = sender_choices([number("12345"), GB_PICTURES], TO, sticky="+447700900101", media=True)
    assert choices == ["+447700900101"]
