"""The content type of a media file Pigeon does not host, from its URL alone: the path's
extension, whatever the query and fragment say, with one fallback for both directions."""

from __future__ import annotations

import pytest

from pigeon.domain.media import UNKNOWN_TYPE, content_type_of


@pytest.mark.parametrize(
    ("url", "content_type"),
    [
        ("https://cdn.example.com/cat.jpg", "image/jpeg"),
        ("https://cdn.example.com/CAT.JPEG", "image/jpeg"),
        ("https://cdn.example.com/d.JPG#frag", "image/jpeg"),
        ("https://cdn.example.com/c.png?x=1.gif", "image/png"),
        ("https://cdn.example.com/menu.pdf?v=2#page=1", "application/pdf"),
        ("https://cdn.example.com/%E2%98%83.gif", "image/gif"),
        ("https://cdn.example.com/clip.mp4", "video/mp4"),
        ("https://cdn.example.com/sticker.webp", "image/webp"),
        ("https://cdn.example.com/voice.amr", "audio/amr"),
        ("https://cdn.example.com/blob", UNKNOWN_TYPE),
        ("https://cdn.example.com/photos.jpg/", UNKNOWN_TYPE),  # a directory's name, not a file's
        ("https://cdn.example.com/?file=a.jpg", UNKNOWN_TYPE),
        ("https://cdn.example.com/archive.tar.gz", UNKNOWN_TYPE),
        ("http://[::1/a.jpg", UNKNOWN_TYPE),  # a URL that does not parse
    ],
)
def test_the_type_comes_from_the_paths_extension(url: str, content_type: str) -> None:
    assert content_type_of(url) == content_type


def test_the_fallback_is_a_type_not_null() -> None:
    assert UNKNOWN_TYPE == "application/octet-stream"
