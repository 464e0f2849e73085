"""Text from carriers and webhooks made storable (pigeon.domain.storable), and where it is
applied: receipts, inbound messages, SMPP ids, webhook answers, URLs, form parameters."""

from __future__ import annotations

from pigeon.app.inbound import storable_inbound
from pigeon.app.receipts import storable_receipt
from pigeon.bootstrap import process_name
from pigeon.carriers.smpp_ids import IdSource, canonical_id
from pigeon.domain import storable
from pigeon.domain.twiml import interpret
from pigeon.domain.urls import is_valid_http_url
from pigeon.ports import InboundSms, Receipt


def test_nul_is_dropped_and_text_cut_to_its_column() -> None:
    assert storable.without_nul("a\x00b\x00") == "ab"
    assert storable.without_nul("plain") == "plain"
    assert storable.fitted("\x00" + "x" * 100, 80) == "x" * 80
    assert storable.fitted("short", 80) == "short"


def test_an_answers_excerpt_shows_nul_and_bytes_that_are_not_utf8_as_replacement_characters() -> None:
    assert storable.excerpt(b"ok\x00\xff!", 1024) == "ok\ufffd\ufffd!"
    assert storable.excerpt(b"x" * 2000, 1024) == "x" * 1024
    assert storable.excerpt("\u00e9".encode(), 1024) == "\u00e9"


def test_the_first_parameter_holding_nul_is_named() -> None:
    assert storable.nul_parameter([("To", "+1"), ("Body", "a\x00"), ("X", "\x00")]) == "Body"
    assert storable.nul_parameter([("Na\x00me", "v")]) == "Na\x00me"
    assert storable.nul_parameter([("To", "+1")]) is None


def test_a_receipt_keeps_its_fields_within_their_columns() -> None:
    odd = Receipt(
        carrier="acme",
        carrier_id="\x00" + "9" * 90,
        stat="DELIVERED_TO_HANDSET",
        err="0" * 20,
        done_date="2601151201\x00",
        raw="id:... stat:DELIVRD\x00\x00",
    )
    kept = storable_receipt(odd)
    assert kept.carrier_id == "9" * 80
    assert (kept.stat, kept.err, kept.done_date) == ("DELIVERED_TO_HAN", "0" * 16, "2601151201")
    assert kept.raw == "id:... stat:DELIVRD"
    assert storable_receipt(Receipt(carrier="acme", carrier_id="1", stat="\x00")).stat == "UNKNOWN"
    plain = Receipt(carrier="acme", carrier_id="1", stat="DELIVRD", err=None, done_date=None, raw="r")
    assert storable_receipt(plain) == plain


def test_an_inbound_text_loses_its_nul_padding_and_says_how_much() -> None:
    sms = InboundSms(
        carrier="acme", sender="4477" + "0" * 70, recipient="+14155550100", body="Hi\x00\x00", raw={"data_coding": 8}
    )
    kept = storable_inbound(sms)
    assert (kept.body, len(kept.sender), kept.recipient) == ("Hi", 64, "+14155550100")
    assert kept.raw == {"data_coding": 8, "nul_characters_removed": 2}
    clean = InboundSms(carrier="acme", sender="+447700900123", recipient="+14155550100", body="Hi")
    assert storable_inbound(clean) is clean


def test_an_smpp_id_past_80_characters_is_cut_alike_from_a_submit_and_a_receipt() -> None:
    long_id = "ab" + "7" * 88
    from_submit = canonical_id(long_id, IdSource.SUBMIT)
    assert from_submit == long_id[:80] == canonical_id(long_id.upper() + "\x00", IdSource.RECEIPT_TLV)
    assert canonical_id("00A1\x00b", IdSource.SUBMIT) == "a1b"


def test_a_plain_text_reply_is_sent_without_nul() -> None:
    reply = interpret(200, "text/plain", b"Thanks\x00\x00")
    assert [m.body for m in reply.messages] == ["Thanks"]


def test_urls_with_control_characters_are_not_valid() -> None:
    for url in (
        "https://example.com/\x00",
        "https://example.com/a\x7f",
        "https://example.com/?q=\x1b",
        "https://e.com/ b",
    ):
        assert not is_valid_http_url(url), url
    assert is_valid_http_url("https://example.com/caf\u00e9?q=1")


def test_a_worker_process_name_fits_its_columns_and_stays_distinct() -> None:
    assert process_name("worker-1", 4242) == "worker-1:4242"
    pod = "pigeon-workers-" + "x" * 48  # 63 characters, as a Kubernetes pod's name may be
    names = {process_name(pod, 4194304), process_name(pod[:-1] + "y", 4194304)}
    assert len(names) == 2 and all(len(n) == storable.PROCESS_NAME_LENGTH for n in names)
    assert all(n.startswith("pigeon-workers-") and n.endswith(":4194304") for n in names)
