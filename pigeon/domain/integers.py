"""Whole numbers that requests carry as text (PageSize, ValidityPeriod, Distance, an error
code in a path), read one strict way everywhere.

Python's int() takes more than a client can mean: "١٠" (Arabic-Indic digits), "1_000",
" 10 ", and it raises, with a message naming `sys.set_int_max_str_digits()`, for a string
of more than 4,300 digits, which reached the error handler as a 500. Here a whole number is
ASCII digits only, at most MAX_DIGITS of them, with a leading "-" or "+" only where the
caller allows a sign; callers check the range they need and say so in their own words.
"""

from __future__ import annotations

__all__ = ["MAX_DIGITS", "whole_number"]

#: More digits than any value a request may carry needs (2**63 has 19), leading zeros
#: included; far below where int() gets slow or refuses.
MAX_DIGITS = 32


def whole_number(text: str, *, signed: bool = False) -> int | None:
    """The integer `text` spells, or None when it is not ASCII digits (after one "-" or "+"
    when `signed`), or has more than MAX_DIGITS of them."""
    digits = text[1:] if signed and text[:1] in ("-", "+") else text
    if not (0 < len(digits) <= MAX_DIGITS and digits.isascii() and digits.isdigit()):
        return None
    return int(text)
