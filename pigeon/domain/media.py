"""What Pigeon tells of a media file it does not host: its type, guessed from its URL.

Pigeon never fetches a message's media (Twilio does, and reads the type from the answer), so
the Media resource's ``content_type`` and an incoming-message webhook's ``MediaContentType{N}``
come from the URL alone: the extension of its path, the query and the fragment left out
(``…/menu.PDF?v=2#page=1`` is ``application/pdf``). A sent and a received message's media are
guessed the same way, with one fallback: ``application/octet-stream`` (RFC 2046's type for
data of unknown kind). The OpenAPI description allows null, but a webhook parameter is always
a string, and an application that reads ``content_type.startswith("image/")`` should not
meet a null on one side and a string on the other.
"""

from __future__ import annotations

import mimetypes
import posixpath
from functools import lru_cache
from urllib.parse import unquote, urlsplit

#: The type of media whose kind the URL does not tell.
UNKNOWN_TYPE = "application/octet-stream"


#: Types of media handsets send that Python's table leaves out (or lists as non-standard only).
_MORE_TYPES = {".webp": "image/webp", ".amr": "audio/amr", ".vcard": "text/vcard"}


@lru_cache(maxsize=1)
def _types() -> dict[str, str]:
    """Python's own table of types (a `MimeTypes` made without files holds it alone, not the
    host's /etc/mime.types): the same answer on every machine that runs Pigeon."""
    return {**mimetypes.MimeTypes().types_map[True], **_MORE_TYPES}


def content_type_of(url: str) -> str:
    """The media type of the file at `url`, from its path's extension (case ignored)."""
    try:
        path = urlsplit(url).path
    except ValueError:  # a URL that does not parse (an old row): no extension to read
        return UNKNOWN_TYPE
    extension = posixpath.splitext(unquote(path))[1].lower()
    return _types().get(extension, UNKNOWN_TYPE)
