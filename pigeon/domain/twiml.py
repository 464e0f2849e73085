"""TwiML for messaging: what an application answers to an incoming-message webhook.

Only `<Response>` with `<Message>` and `<Redirect>` is valid here. The XML is parsed with
defusedxml: entity expansion, external entities and DTDs are refused, so a hostile answer
cannot exhaust memory or read files. Problems are reported with Twilio's codes: 12100 the
document does not parse, 14110 a verb other than Message/Redirect, 14101/14102/14104/14105 a
bad attribute, 14103 a `<Message>` with neither text nor media or a `<Body>`/`<Media>` holding
markup, 11750 an answer over 64 kB. More than ten `<Message>`s is no error, as on Twilio (whose
14109 is a warning): the first ten are kept and the others counted in `Twiml.dropped`. A
document is read in the encoding its XML declaration (or byte-order mark) names, else in the
charset its Content-Type names, else as UTF-8.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from pigeon.domain import storable

MAX_DOCUMENT_BYTES = 64 * 1024
MAX_MESSAGES = 10
MAX_MEDIA = 10

XML_TYPES = frozenset({"text/xml", "application/xml", "text/html"})
TEXT_TYPES = frozenset({"text/plain"})


class TwimlError(Exception):
    """The application's answer cannot be used."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class ReplyMessage:
    body: str
    media: tuple[str, ...] = ()
    to: str | None = None
    from_: str | None = None
    action: str | None = None
    method: str = "POST"


@dataclass(frozen=True)
class Redirect:
    url: str
    method: str = "POST"


@dataclass(frozen=True)
class Twiml:
    """The verbs in document order. A Redirect ends the document, and so does a Message with an
    action: later verbs are unreachable. The action URL receives the reply's status callbacks;
    Pigeon does not request it for more TwiML (README, Two-way messaging). `dropped`: the
    `<Message>`s past the tenth, which are not sent (Twilio's warning 14109)."""

    messages: tuple[ReplyMessage, ...] = ()
    redirect: Redirect | None = None
    dropped: int = 0


def _method(value: str | None, code: int) -> str:
    method = (value or "POST").upper()
    if method not in {"GET", "POST"}:
        raise TwimlError(code, f"method must be GET or POST, not {value!r}")
    return method


def _noun_text(el: Element) -> str:
    """The text of a `<Body>` or `<Media>`. Markup inside one (`<b>1234</b>`) is refused: the
    element's text stops at the markup, so the rest would be cut without a word."""
    if len(el):
        raise TwimlError(14103, f"<{el.tag}> may hold only text, not a <{el[0].tag}> element")
    return el.text or ""


def _content(text: str | None) -> str:
    """Text between a `<Message>`'s nouns: the message's own words, unless it is only blanks
    (the document's indentation between its elements)."""
    return text if text is not None and text.strip() else ""


def _message_text(el: Element) -> str:
    """A `<Message>`'s body: its `<Body>`s and its own text around its nouns, in document
    order, so that `<Media>url</Media>Caption` keeps its caption."""
    text = _content(el.text)
    for child in el:
        if child.tag == "Body":
            text += _noun_text(child)
        text += _content(child.tail)
    return text


def _message(el: Element) -> ReplyMessage:
    unknown = {c.tag for c in el} - {"Body", "Media"}
    if unknown:
        raise TwimlError(14110, f"<Message> may contain only <Body> and <Media>, not {sorted(unknown)}")
    media = tuple(url for url in (_noun_text(m).strip() for m in el.findall("Media")) if url)
    if len(media) > MAX_MEDIA:
        raise TwimlError(14103, f"a <Message> may carry at most {MAX_MEDIA} <Media>")
    text = _message_text(el).strip()
    if not text and not media:
        raise TwimlError(14103, "a <Message> needs a body or media")
    action = el.get("action") or el.get("statusCallback")
    return ReplyMessage(
        body=text,
        media=media,
        to=el.get("to"),
        from_=el.get("from"),
        action=action,
        method=_method(el.get("method"), 14104),
    )


def parse(document: bytes | str) -> Twiml:
    """Parse a TwiML document; raises TwimlError with the Twilio code on any problem."""
    raw = document.encode() if isinstance(document, str) else document
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise TwimlError(11750, f"the answer is over {MAX_DOCUMENT_BYTES} bytes")
    try:
        root = fromstring(raw, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError, LookupError) as exc:
        # ValueError and LookupError: an XML declaration naming an encoding the parser cannot
        # read ("multi-byte encodings are not supported", an unknown one).
        raise TwimlError(12100, f"the answer is not a valid XML document: {exc}") from exc
    if root.tag != "Response":
        raise TwimlError(12100, f"the root element is <{root.tag}>, not <Response>")
    messages: list[ReplyMessage] = []
    dropped = 0
    for el in root:
        if el.tag == "Message":
            message = _message(el)  # read past the tenth too: a broken document is broken whole
            if len(messages) < MAX_MESSAGES:
                messages.append(message)
            else:
                dropped += 1
            if el.get("action"):
                # Twilio hands control to the action URL here: later verbs are unreachable.
                # (statusCallback alone, the legacy attribute, is only a callback URL.)
                return Twiml(tuple(messages), dropped=dropped)
        elif el.tag == "Redirect":
            url = (el.text or "").strip()
            if not url:
                raise TwimlError(12100, "<Redirect> needs a URL")
            return Twiml(tuple(messages), Redirect(url, _method(el.get("method"), 14104)), dropped)
        else:
            raise TwimlError(14110, f"<{el.tag}> is not a messaging verb; use <Message> or <Redirect>")
    return Twiml(tuple(messages), dropped=dropped)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _named_charset(content_type: str | None) -> str | None:
    """The text's encoding as its Content-Type names it (charset=latin-1); None when it names
    none, or one that Python does not know or that is no text encoding."""
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            try:
                found = codecs.lookup(value.strip().strip('"')).name
                b"a".decode(found, "ignore")  # a codec that is no text encoding (base64, rot13) refuses this
            except LookupError:
                return None
            return found
    return None


def _charset(content_type: str | None) -> str:
    """The charset the Content-Type names, else UTF-8."""
    return _named_charset(content_type) or "utf-8"


#: An XML declaration that names the document's encoding, or a byte-order mark: either tells
#: the parser how the bytes are encoded, and is the document's own word on it.
_SELF_DESCRIBED = re.compile(rb"^(?:\xef\xbb\xbf|\xff\xfe|\xfe\xff|\s*<\?xml[^>]*?\sencoding\s*=)")


def _xml_document(content_type: str | None, body: bytes) -> bytes | str:
    """The document to parse: as text decoded in the charset its Content-Type names, when its
    bytes do not say their encoding themselves; otherwise the bytes, which the parser reads
    as their declaration (or byte-order mark) says, and as UTF-8 when nothing says."""
    charset = _named_charset(content_type)
    if charset is None or _SELF_DESCRIBED.match(body):
        return body
    try:
        return body.decode(charset)
    except UnicodeDecodeError as exc:
        raise TwimlError(12100, f"the answer is not valid {charset}, as its Content-Type says: {exc}") from exc


def interpret(status: int, content_type: str | None, body: bytes) -> Twiml:
    """What an application's HTTP answer asks for. The HTTP status must already be 2xx."""
    if status == 204 or not body.strip():
        return Twiml()
    if len(body) > MAX_DOCUMENT_BYTES:  # any answer, not only TwiML: a text one is a reply too
        raise TwimlError(11750, f"the answer is over {MAX_DOCUMENT_BYTES} bytes")
    kind = media_type(content_type)
    if kind in TEXT_TYPES:
        # A reply is sent as it is, so only what no store can hold (NUL, see storable) is left out.
        text = storable.without_nul(body.decode(_charset(content_type), errors="replace")).strip()
        return Twiml((ReplyMessage(body=text),)) if text else Twiml()
    if kind in XML_TYPES or kind == "":
        return parse(_xml_document(content_type, body))
    raise TwimlError(12300, f"the answer's Content-Type {content_type!r} is neither TwiML (text/xml) nor text/plain")
