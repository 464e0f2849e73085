"""Lookup v2's free request: a phone number's E.164 and national formats, and whether it is
valid, with the reason when it is not (Twilio's validation_errors values).

"Valid" means what the numbering plan says: a number in a range that can be assigned. Pigeon
sends to numbers that are merely possible as well (test and drama ranges; see
pigeon.domain.numbers), so a number Lookup calls invalid may still be sent to. Built on the
numbering plan alone (phonenumberslite): no carrier, line type or caller name data.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

__all__ = ["DATA_PACKAGES", "LookupResult", "look_up"]

#: The Fields values that ask for data Pigeon does not have (Twilio's paid data packages).
DATA_PACKAGES = (
    "caller_name",
    "sim_swap",
    "call_forwarding",
    "line_status",
    "line_type_intelligence",
    "identity_match",
    "reassigned_number",
    "sms_pumping_risk",
    "phone_number_quality_score",
    "pre_fill",
)

_POSSIBILITY = {
    ValidationResult.IS_POSSIBLE: "INVALID_BUT_POSSIBLE",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "INVALID_BUT_POSSIBLE",
    ValidationResult.INVALID_COUNTRY_CODE: "INVALID_COUNTRY_CODE",
    ValidationResult.TOO_SHORT: "TOO_SHORT",
    ValidationResult.TOO_LONG: "TOO_LONG",
    ValidationResult.INVALID_LENGTH: "INVALID_LENGTH",
}
_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "INVALID_COUNTRY_CODE",
    NumberParseException.NOT_A_NUMBER: "NOT_A_NUMBER",
    NumberParseException.TOO_SHORT_AFTER_IDD: "TOO_SHORT",
    NumberParseException.TOO_SHORT_NSN: "TOO_SHORT",
    NumberParseException.TOO_LONG: "TOO_LONG",
}


@dataclass(frozen=True)
class LookupResult:
    phone_number: str  # E.164 when it parsed, else as given
    valid: bool
    validation_errors: tuple[str, ...]
    country_code: str | None  # ISO 3166-1 alpha-2
    calling_country_code: str | None
    national_format: str | None


def look_up(raw: str, *, country: str = "US") -> LookupResult:
    """Format and validate `raw` (E.164, or national for `country`: North America by default,
    as on Twilio)."""
    try:
        number = phonenumbers.parse(raw, country.upper())
    except NumberParseException as exc:
        return LookupResult(raw, False, (_PARSE_ERRORS.get(exc.error_type, "NOT_A_NUMBER"),), None, None, None)
    calling = number.country_code or 0
    region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(calling)
    valid = phonenumbers.is_valid_number(number)
    errors = () if valid else (_POSSIBILITY.get(phonenumbers.is_possible_number_with_reason(number), "INVALID_LENGTH"),)
    return LookupResult(
        phone_number=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        valid=valid,
        validation_errors=errors,
        country_code=region if region not in (None, "ZZ", "001") else None,
        calling_country_code=str(calling),
        national_format=phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
    )
