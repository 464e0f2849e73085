"""Opt-out keywords and TwiML parsing: pure rules."""

from __future__ import annotations

import pytest

from pigeon.domain.optout import KeywordKind, classify
from pigeon.domain.twiml import Redirect, ReplyMessage, Twiml, TwimlError, interpret, parse


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", (KeywordKind.OPT_OUT, "STOP")),
        ("  stop\n", (KeywordKind.OPT_OUT, "STOP")),
        ("Unsubscribe", (KeywordKind.OPT_OUT, "UNSUBSCRIBE")),
        ("stopall", (KeywordKind.OPT_OUT, "STOPALL")),
        ("cancel", (KeywordKind.OPT_OUT, "CANCEL")),
        ("END", (KeywordKind.OPT_OUT, "END")),
        ("quit", (KeywordKind.OPT_OUT, "QUIT")),
        ("revoke", (KeywordKind.OPT_OUT, "REVOKE")),
        ("optout", (KeywordKind.OPT_OUT, "OPTOUT")),
        ("start", (KeywordKind.OPT_IN, "START")),
        ("Yes", (KeywordKind.OPT_IN, "YES")),
        ("UNSTOP", (KeywordKind.OPT_IN, "UNSTOP")),
        ("help", (KeywordKind.HELP, "HELP")),
        ("info", (KeywordKind.HELP, "INFO")),
        ("STOP PLEASE", None),
        ("please stop", None),
        ("", None),
        ("STOP.", None),
    ],
)
def test_keywords_match_the_whole_message(body: str, expected: tuple[KeywordKind, str] | None) -> None:
    assert classify(body) == expected


def test_messages_redirect_and_attributes() -> None:
    doc = parse(
        b'<Response><Message to="+14155550100" from="+14155550199" statusCallback="https://a.example/cb" method="GET">'
        b"<Body>one </Body><Body>two</Body><Media>https://m.example/a.png</Media></Message>"
        b'<Message>plain</Message><Redirect method="GET">https://b.example/next</Redirect>'
        b"<Message>unreachable</Message></Response>"
    )
    assert doc.messages == (
        ReplyMessage(
            "one two", ("https://m.example/a.png",), "+14155550100", "+14155550199", "https://a.example/cb", "GET"
        ),
        ReplyMessage("plain"),
    )
    assert doc.redirect == Redirect("https://b.example/next", "GET")


def test_empty_response_means_no_reply() -> None:
    assert parse(b"<Response/>").messages == ()
    assert interpret(204, None, b"").messages == ()
    assert interpret(200, "text/xml", b"").messages == ()


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (b"<Response><Message>x</Response>", 12100),
        (b"<Reply><Message>x</Message></Reply>", 12100),
        (b"<Response><Say>x</Say></Response>", 14110),
        (b'<Response><Message method="PUT">x</Message></Response>', 14104),
        (b"<Response><Message></Message></Response>", 14103),
        (b"<Response><Message>code <b>1234</b></Message></Response>", 14110),
        (b"<Response><Message>" + b"<Media>https://m.example/a.png</Media>" * 11 + b"</Message></Response>", 14103),
        (b"<Response><Redirect> </Redirect></Response>", 12100),
        # a broken <Message> past the tenth still breaks the document
        (b"<Response>" + b"<Message>x</Message>" * 10 + b"<Message/></Response>", 14103),
        (b"<Response><Message>" + b"x" * 70_000 + b"</Message></Response>", 11750),
        # entity expansion (billion laughs) and external entities are refused, not expanded
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b"<Response><Message>&lol2;</Message></Response>",
            12100,
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<Response><Message>&x;</Message></Response>",
            12100,
        ),
    ],
)
def test_bad_documents_carry_twilio_codes(document: bytes, code: int) -> None:
    with pytest.raises(TwimlError) as err:
        parse(document)
    assert err.value.code == code


def test_content_types() -> None:
    assert interpret(200, "text/plain; charset=utf-8", b"thanks").messages == (ReplyMessage("thanks"),)
    # The charset the answer names is the one it is read in; an unknown one reads as UTF-8.
    assert interpret(200, "text/plain; charset=ISO-8859-1", b"caf\xe9").messages == (ReplyMessage("caf\u00e9"),)
    assert interpret(200, 'text/plain; format=flowed; Charset="latin-1"', b"caf\xe9").messages == (
        ReplyMessage("caf\u00e9"),
    )
    assert interpret(200, "text/plain; charset=klingon", "caf\u00e9".encode()).messages == (ReplyMessage("caf\u00e9"),)
    assert interpret(200, "application/xml", b"<Response><Message>a</Message></Response>").messages[0].body == "a"
    with pytest.raises(TwimlError) as err:
        interpret(200, "application/json", b"{}")
    assert err.value.code == 12300
    with pytest.raises(TwimlError) as err:  # any answer over 64 kB, not only TwiML
        interpret(200, "application/json", b"x" * 65_537)
    assert err.value.code == 11750


def test_xml_is_read_in_the_charset_its_content_type_names_when_it_declares_none() -> None:
    """It was read as UTF-8 whatever the header said, and failed 12100."""
    latin1 = "<Response><Message>Caf\u00e9 ouvert</Message></Response>".encode("latin-1")
    assert interpret(200, "text/xml; charset=ISO-8859-1", latin1).messages == (ReplyMessage("Caf\u00e9 ouvert"),)
    declared = b'<?xml version="1.0"?>' + latin1
    assert interpret(200, 'application/xml; charset="latin-1"', declared).messages[0].body == "Caf\u00e9 ouvert"
    # The document's own encoding declaration is the document's word: it is read as it says.
    utf8 = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Caf\u00e9</Message></Response>'.encode()
    assert interpret(200, "text/xml; charset=ISO-8859-1", utf8).messages[0].body == "Caf\u00e9"
    # No charset named: UTF-8, as before; an unknown one is no charset.
    assert interpret(200, "text/xml", utf8[38:]).messages[0].body == "Caf\u00e9"
    assert interpret(200, "text/xml; charset=klingon", utf8[38:]).messages[0].body == "Caf\u00e9"


def test_xml_that_does_not_decode_in_its_named_charset_is_a_parse_failure() -> None:
    with pytest.raises(TwimlError) as err:
        interpret(200, "text/xml; charset=us-ascii", "<Response><Message>\u00e9</Message></Response>".encode())
    assert err.value.code == 12100


def test_verbs_after_a_message_with_an_action_are_unreachable() -> None:
    """Twilio requests the action URL instead of going on (REFERENCE.md, TwiML for messaging),
    so what follows is not run, nor even read: a bad verb there is no error either."""
    doc = parse(
        b'<Response><Message action="https://a.example/status">first</Message>'
        b"<Message>after the action</Message><Redirect>https://b.example/next</Redirect><Say>x</Say></Response>"
    )
    assert doc == Twiml((ReplyMessage("first", action="https://a.example/status"),))
    # statusCallback alone is a callback URL, not a hand-over: the document goes on.
    doc = parse(b'<Response><Message statusCallback="https://a.example/s">a</Message><Message>b</Message></Response>')
    assert [m.body for m in doc.messages] == ["a", "b"]


@pytest.mark.parametrize(
    "document",
    [
        b"<Response><Message><Body>Your code is <b>1234</b>, valid 5 min</Body></Message></Response>",
        b"<Response><Message><Body>hi</Body><Media>https://m.example/<i>a</i>.png</Media></Message></Response>",
    ],
)
def test_markup_inside_a_body_or_media_is_refused_not_cut(document: bytes) -> None:
    """The text stopped at the markup: "Your code is" went out, and no alert said why."""
    with pytest.raises(TwimlError) as err:
        parse(document)
    assert err.value.code == 14103


@pytest.mark.parametrize(
    ("message", "body"),
    [
        ("<Media>https://m.example/a.jpg</Media>Caption after media", "Caption after media"),
        ("Look: <Media>https://m.example/a.jpg</Media> nice, no?", "Look:  nice, no?"),
        ("Hello <Body>big</Body> world", "Hello big world"),
        ("\n  <Body>one</Body>\n  <Media>https://m.example/a.jpg</Media>\n  <Body> two</Body>\n", "one two"),
    ],
)
def test_a_message_s_text_around_its_nouns_is_part_of_its_body(message: str, body: str) -> None:
    """Only the text before the first noun was read: a caption after <Media> went out as an
    empty body. Blanks between elements are the document's layout, not the message's."""
    [reply] = parse(f"<Response><Message>{message}</Message></Response>").messages
    assert reply.body == body


def test_messages_past_the_tenth_are_counted_not_kept_and_the_document_stands() -> None:
    """The eleventh failed the whole document (14109): nothing was sent and the fallback was
    asked. Twilio sends the first ten and logs 14109 as a warning."""
    doc = parse(
        b"<Response>"
        + b"".join(b"<Message>m%d</Message>" % i for i in range(12))
        + b"<Redirect>https://b.example/next</Redirect></Response>"
    )
    assert [m.body for m in doc.messages] == [f"m{i}" for i in range(10)]
    assert doc.dropped == 2 and doc.redirect == Redirect("https://b.example/next")
    doc = parse(b"<Response>" + b"<Message>x</Message>" * 10 + b'<Message action="/s">y</Message></Response>')
    assert (len(doc.messages), doc.dropped, doc.redirect) == (10, 1, None)
    assert parse(b"<Response>" + b"<Message>x</Message>" * 10 + b"</Response>").dropped == 0
