"""Unit tests for pigeon.domain.segments (REFERENCE.md §h).

Septet and code-unit counts are computed here independently of the module (from
the reference JSON and from UTF-16 encoding) so the tests can catch a wrong table
or a wrong counter, not just restate it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from pigeon.domain.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_MULTIPART,
    GSM7_SINGLE,
    MAX_BODY_CHARS,
    SEGMENT_BITS,
    SMART_ENCODING,
    UCS2_MULTIPART,
    UCS2_SINGLE,
    UDH_OCTETS_MULTIPART,
    Encoding,
    SegmentPlan,
    apply_smart_encoding,
    build_udh,
    character_count,
    encode_part,
    plan_segments,
    unit_count,
)

REFERENCE_JSON = Path(__file__).resolve().parents[2] / ".." / "shared" / "twilio" / "gsm7-and-smart-encoding.json"


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    if not REFERENCE_JSON.exists():
        pytest.skip(f"reference data not present at {REFERENCE_JSON}")
    data: dict[str, Any] = json.loads(REFERENCE_JSON.read_text(encoding="utf-8"))
    return data


# Independent counters -------------------------------------------------------------------------------

_EXT = set("\f^{}\\[~]|€")


def septets(text: str) -> int:
    return sum(2 if ch in _EXT else 1 for ch in text)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-be")) // 2


def assert_plan_sound(plan: SegmentPlan, sixteen_bit: bool = False) -> None:
    """Invariants every plan must satisfy, whatever the input."""
    assert "".join(plan.parts) == plan.body
    assert plan.num_segments == len(plan.parts) >= 1
    udh = 7 if sixteen_bit else 6
    if plan.encoding == "GSM-7":
        assert all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in plan.body)
        count, single, multi = septets, 160, (1120 - udh * 8) // 7
    else:
        count, single, multi = utf16_units, 70, (1120 - udh * 8) // 16
    if len(plan.parts) == 1:
        assert count(plan.body) <= single
    else:
        assert count(plan.body) > single
        for part in plan.parts:
            assert part, "no empty parts in a multipart message"
            assert count(part) <= multi
            part.encode("utf-16-be")  # strict: would raise on a half surrogate pair
            encoded = encode_part(part, plan.encoding)
            if plan.encoding == "GSM-7":
                assert not encoded.endswith(b"\x1b"), "part ends with half an escape"
                assert len(encoded) == septets(part)
            else:
                assert len(encoded) == 2 * utf16_units(part)


# Reference data ---------------------------------------------------------------------------------------


def test_gsm7_tables_equal_reference(reference: dict[str, Any]) -> None:
    gsm7 = reference["gsm7"]
    assert frozenset(gsm7["basic_chars"]) == GSM7_BASIC
    assert frozenset(gsm7["extension_chars"]) == GSM7_EXTENSION
    assert len(GSM7_BASIC) == 127 and len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION
    assert "\x1b" not in GSM7_BASIC | GSM7_EXTENSION
    by_map = {entry["char"]: entry["septets"] for entry in gsm7["map"].values()}
    assert set(by_map) == GSM7_BASIC | GSM7_EXTENSION
    for ch, codes in by_map.items():
        assert unit_count(ch, "GSM-7") == len(codes)
        assert encode_part(ch, "GSM-7") == bytes(codes), ch


def test_smart_encoding_map_equals_reference(reference: dict[str, Any]) -> None:
    assert reference["smart_encoding"]["map"] == SMART_ENCODING
    assert len(SMART_ENCODING) == 270
    # Replacements are GSM-7 and sources are not, or the map would be pointless.
    assert not set(SMART_ENCODING) & (GSM7_BASIC | GSM7_EXTENSION)
    assert all(ch in GSM7_BASIC | GSM7_EXTENSION for r in SMART_ENCODING.values() for ch in r)


def test_segment_constants_equal_reference(reference: dict[str, Any]) -> None:
    model = reference["segment_model"]
    assert model["segment_bits"] == SEGMENT_BITS
    assert model["udh_octets_multipart"] == UDH_OCTETS_MULTIPART
    assert model["gsm7_single"] == GSM7_SINGLE == 160
    assert model["gsm7_multipart_per_segment"] == GSM7_MULTIPART == 153
    assert model["ucs2_single"] == UCS2_SINGLE == 70
    assert model["ucs2_multipart_per_segment"] == UCS2_MULTIPART == 67


# Segment counts ---------------------------------------------------------------------------------------


def test_empty_body_is_one_empty_segment() -> None:
    plan = plan_segments("")
    assert plan == SegmentPlan(encoding="GSM-7", parts=("",), body="")
    assert plan.num_segments == 1


@pytest.mark.parametrize(
    ("body", "encoding", "expected"),
    [
        ("a", "GSM-7", 1),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 153 * 2, "GSM-7", 2),
        ("a" * (153 * 2 + 1), "GSM-7", 3),
        ("a" * 1600, "GSM-7", 11),
        ("€" * 80, "GSM-7", 1),
        ("€" * 81, "GSM-7", 2),
        ("a" * 158 + "€", "GSM-7", 1),
        ("a" * 159 + "€", "GSM-7", 2),
        ("{}[]" * 38, "GSM-7", 2),  # 304 septets: 76 escapes per part
        ("{}[]" * 39, "GSM-7", 3),
        ("ж" * 70, "UCS-2", 1),
        ("ж" * 71, "UCS-2", 2),
        ("ж" * 134, "UCS-2", 2),
        ("ж" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),
        ("😀" * 36, "UCS-2", 2),
        ("a" * 66 + "😀", "UCS-2", 1),
        ("a" * 68 + "😀", "UCS-2", 1),
        ("a" * 69 + "😀", "UCS-2", 2),
        ("€" * 69 + "ж", "UCS-2", 1),  # extension chars are one unit in UCS-2
        ("a" * 160 + "ж", "UCS-2", 3),  # one non-GSM char makes the whole body UCS-2
        ("Ç" * 160, "GSM-7", 1),
        ("ç", "UCS-2", 1),  # only the capital C-cedilla is in the default alphabet
        ("`", "UCS-2", 1),
        ("\t", "UCS-2", 1),
    ],
)
def test_segment_counts(body: str, encoding: Encoding, expected: int) -> None:
    plan = plan_segments(body)
    assert plan.encoding == encoding
    assert plan.num_segments == expected
    assert plan.body == body
    assert_plan_sound(plan)


@pytest.mark.parametrize("n", [161, 200, 305, 306, 307, 459, 460, 1000, 1600])
def test_plain_gsm_fills_parts_completely(n: int) -> None:
    plan = plan_segments("x" * n)
    assert plan.num_segments == math.ceil(n / 153)
    assert [len(p) for p in plan.parts[:-1]] == [153] * (plan.num_segments - 1)


def test_escape_pair_never_split() -> None:
    plan = plan_segments("€" * 81)
    assert plan.parts == ("€" * 76, "€" * 5)  # 153 is odd: a 77th euro would need septets 153+154
    assert [septets(p) for p in plan.parts] == [152, 10]
    assert_plan_sound(plan)

    plan = plan_segments("a" * 152 + "€" + "b" * 10)
    assert plan.parts == ("a" * 152, "€" + "b" * 10)


def test_surrogate_pair_never_split() -> None:
    plan = plan_segments("😀" * 36)
    assert plan.parts == ("😀" * 33, "😀" * 3)
    assert [utf16_units(p) for p in plan.parts] == [66, 6]

    plan = plan_segments("a" * 66 + "😀" + "b" * 10)
    assert plan.parts == ("a" * 66, "😀" + "b" * 10)
    plan = plan_segments("a" * 65 + "😀" + "b" * 10)
    assert plan.parts == ("a" * 65 + "😀", "b" * 10)
    assert_plan_sound(plan)


def test_crlf_counts_two_and_stays_together() -> None:
    assert plan_segments("\r\n" * 80).num_segments == 1
    plan = plan_segments("\r\n" * 81)
    assert plan.encoding == "GSM-7"
    assert plan.parts == ("\r\n" * 76, "\r\n" * 5)
    assert plan_segments("a" + "\r\n" * 80).parts[0] == "a" + "\r\n" * 76


@pytest.mark.parametrize(
    ("cluster", "units"),
    [
        ("🇺🇸", 4),  # regional-indicator pair
        ("👨\u200d👩\u200d👧", 8),  # ZWJ sequence
        ("👍🏽", 4),  # skin-tone modifier
        ("e\u0301", 2),  # combining accent
        ("❤\ufe0f", 2),  # variation selector
        ("🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", 14),  # tag sequence
    ],
)
def test_grapheme_clusters_kept_whole(cluster: str, units: int) -> None:
    assert utf16_units(cluster) == units
    body = cluster * (200 // units)
    plan = plan_segments(body)
    assert plan.num_segments > 1
    for part in plan.parts:
        assert len(part) % len(cluster) == 0 and part == cluster * (len(part) // len(cluster))
    assert_plan_sound(plan)


def test_adjacent_flags_pair_up_correctly() -> None:
    # "🇺🇸🇬🇧..." must split between flags, never inside "🇸🇬" (which is also a valid pair).
    body = "🇺🇸🇬🇧" * 10 + "ж"
    plan = plan_segments(body)
    for part in plan.parts[:-1]:
        assert len(part) % 2 == 0
        assert part.startswith("🇺🇸") or part.startswith("🇬🇧")


def test_oversized_cluster_is_split_at_code_points() -> None:
    body = "a" + "\u0301" * 100  # "zalgo": one grapheme, 101 units, bigger than any part
    plan = plan_segments(body)
    assert plan.num_segments == 2
    assert_plan_sound(plan)


def test_sixteen_bit_reference_shrinks_parts() -> None:
    assert [septets(p) for p in plan_segments("a" * 305, sixteen_bit_reference=True).parts] == [152, 152, 1]
    assert [len(p) for p in plan_segments("ж" * 133, sixteen_bit_reference=True).parts] == [66, 66, 1]
    assert plan_segments("a" * 160, sixteen_bit_reference=True).num_segments == 1


# Smart encoding and raw ESC -----------------------------------------------------------------------------


def test_smart_encoding_turns_look_alikes_into_gsm7() -> None:
    body = "“Hello” — it’s «fine»…\u00a0ok"
    assert plan_segments(body).encoding == "UCS-2"
    plan = plan_segments(body, smart_encoding=True)
    assert plan.encoding == "GSM-7"
    assert plan.body == '"Hello" - it\'s "fine"...  ok'
    assert plan_segments("—" * 80).num_segments == 2
    assert plan_segments("—" * 80, smart_encoding=True).num_segments == 1


def test_smart_encoding_still_applies_when_message_stays_ucs2() -> None:
    plan = plan_segments("“hi” 😀", smart_encoding=True)
    assert plan.encoding == "UCS-2"
    assert plan.body == '"hi" 😀'


def test_smart_encoding_can_lengthen_and_delete() -> None:
    assert apply_smart_encoding("½…‼") == "1/2...!!"
    assert apply_smart_encoding("a\u200bb\ufeff") == "ab"
    assert apply_smart_encoding("plain") == "plain"


def test_raw_escape_is_stripped() -> None:
    plan = plan_segments("a\x1bb")
    assert plan.body == "ab" and plan.encoding == "GSM-7"
    assert plan_segments("\x1b" * 300) == SegmentPlan(encoding="GSM-7", parts=("",), body="")
    assert plan_segments("a" * 160 + "\x1b").num_segments == 1
    assert plan_segments("ж\x1b", smart_encoding=True).body == "ж"


# Encoding bytes -------------------------------------------------------------------------------------


def test_encode_part_gsm7_bytes_and_round_trip() -> None:
    assert encode_part("@", "GSM-7") == b"\x00"
    assert encode_part("€", "GSM-7") == b"\x1b\x65"
    assert encode_part("[", "GSM-7") == b"\x1b\x3c"
    assert encode_part("Hi!", "GSM-7") == b"Hi!"
    assert encode_part("", "GSM-7") == b""
    every = "".join(sorted(GSM7_BASIC | GSM7_EXTENSION))
    encoded = encode_part(every, "GSM-7")
    assert len(encoded) == septets(every)
    assert all(b < 0x80 for b in encoded)
    assert encoded.decode("gsm03.38") == every


def test_encode_part_rejects_non_gsm_text_as_gsm7() -> None:
    with pytest.raises(ValueError, match="GSM-7"):
        encode_part("ça", "GSM-7")
    with pytest.raises(ValueError):
        encode_part("\x1b", "GSM-7")


def test_encode_part_ucs2_is_utf16_be() -> None:
    assert encode_part("ж", "UCS-2") == b"\x04\x36"
    assert encode_part("😀", "UCS-2") == b"\xd8\x3d\xde\x00"
    assert encode_part("a€", "UCS-2") == b"\x00a\x20\xac"
    body = "Привет 😀 🇺🇸 e\u0301"
    assert encode_part(body, "UCS-2").decode("utf-16-be") == body


# UDH ---------------------------------------------------------------------------------------------------


def test_build_udh_bytes() -> None:
    assert build_udh(0x42, 3, 1) == bytes.fromhex("050003420301")
    assert build_udh(0, 255, 255) == bytes.fromhex("050003 00 ff ff")
    assert build_udh(0x1234, 2, 2, sixteen_bit=True) == bytes.fromhex("060804 1234 0202")
    assert len(build_udh(1, 2, 1)) == UDH_OCTETS_MULTIPART


@pytest.mark.parametrize(
    ("reference", "total", "sequence", "sixteen_bit"),
    [(256, 2, 1, False), (-1, 2, 1, False), (65536, 2, 1, True), (1, 0, 0, False),
     (1, 256, 1, False), (1, 2, 0, False), (1, 2, 3, False)],
)  # fmt: skip
def test_build_udh_rejects_out_of_range(reference: int, total: int, sequence: int, sixteen_bit: bool) -> None:
    with pytest.raises(ValueError):
        build_udh(reference, total, sequence, sixteen_bit=sixteen_bit)


@pytest.mark.parametrize("sixteen_bit", [False, True])
@pytest.mark.parametrize("body", ["a" * 400, "€" * 300, "a{" * 200, "ж" * 200, "😀" * 100, "€😀" * 60])
def test_every_part_fits_a_140_octet_pdu(body: str, sixteen_bit: bool) -> None:
    """UDH + payload must fit 140 octets; GSM-7 septets start on a septet boundary after the UDH."""
    plan = plan_segments(body, sixteen_bit_reference=sixteen_bit)
    total = plan.num_segments
    assert total > 1
    for seq, part in enumerate(plan.parts, start=1):
        udh = build_udh(7, total, seq, sixteen_bit=sixteen_bit)
        payload = encode_part(part, plan.encoding)
        if plan.encoding == "GSM-7":
            fill = -(len(udh) * 8) % 7
            assert len(udh) * 8 + fill + len(payload) * 7 <= 1120
        else:
            assert len(udh) + len(payload) <= 140


# Character count --------------------------------------------------------------------------------------


def test_character_count_is_utf16_units() -> None:
    assert MAX_BODY_CHARS == 1600
    assert character_count("") == 0
    assert character_count("a\r\n") == 3
    assert character_count("€") == 1
    assert character_count("😀") == 2  # a surrogate pair counts two, as on Twilio
    assert character_count("👨\u200d👩\u200d👧") == 8
    assert character_count("😀" * 800) == MAX_BODY_CHARS
    assert character_count("😀" * 801) > MAX_BODY_CHARS
    assert character_count("x" * 1601) > MAX_BODY_CHARS


def test_segment_plan_is_frozen() -> None:
    plan = plan_segments("hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.body = "other"  # type: ignore[misc]


# Properties (seeded random bodies; hypothesis is not a project dependency) --------------------------

_ALPHABET = (
    list("abcXYZ019 .,@£Δ\r\n")
    + sorted(GSM7_EXTENSION)
    + ["ж", "ç", "😀", "🇺", "🇸", "\u200d", "\u0301", "\ufe0f", "🏽", "\x1b", "“", "—", "…", "\t", "\u00a0"]
)


def _random_bodies() -> list[str]:
    rng = random.Random(20240601)
    bodies: list[str] = []
    for _ in range(300):
        length = rng.choice([rng.randint(0, 20), rng.randint(60, 75), rng.randint(140, 170), rng.randint(1, 700)])
        gsm_only = rng.random() < 0.4
        pool = [c for c in _ALPHABET if c in GSM7_BASIC | GSM7_EXTENSION] if gsm_only else _ALPHABET
        bodies.append("".join(rng.choice(pool) for _ in range(length)))
    return bodies


@pytest.mark.parametrize("smart", [False, True])
@pytest.mark.parametrize("sixteen_bit", [False, True])
def test_random_bodies_plan_soundly(smart: bool, sixteen_bit: bool) -> None:
    for body in _random_bodies():
        plan = plan_segments(body, smart_encoding=smart, sixteen_bit_reference=sixteen_bit)
        assert_plan_sound(plan, sixteen_bit=sixteen_bit)
        assert "\x1b" not in plan.body
        expected_body = body.replace("\x1b", "")
        assert plan.body == (apply_smart_encoding(expected_body) if smart else expected_body)
        _assert_boundaries_respect_clusters(plan)


def _assert_boundaries_respect_clusters(plan: SegmentPlan) -> None:
    """Independent checks of the cheap grapheme rules at every part boundary."""
    offset = 0
    for part in plan.parts[:-1]:
        offset += len(part)
        before, after = plan.body[offset - 1], plan.body[offset]
        assert (before, after) != ("\r", "\n"), "CRLF split"
        assert before != "\u200d", "ZWJ sequence split"
        if unicodedata.category(after) in ("Mn", "Me", "Mc") or after in "\ufe0f🏽\u200d":
            # Extenders only start a part when they follow a control character (they don't attach to it).
            assert unicodedata.category(before) == "Cc", (before, after)
