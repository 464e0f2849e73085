"""pigeon.domain.flags: Twilio's booleans, true or false in any case, nothing else."""

from __future__ import annotations

import pytest

from pigeon.domain.errors import ApiError
from pigeon.domain.flags import flag, read_flag
from pigeon.domain.quoted import shown


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False)]
)
def test_true_and_false_in_any_case(text: str, value: bool) -> None:
    assert flag(text) is value


@pytest.mark.parametrize("text", ["", "maybe", "yes", "no", "1", "0", "y", " true", "true ", "truee"])
def test_anything_else_is_none(text: str) -> None:
    assert flag(text) is None


@pytest.mark.parametrize(("raw", "value"), [(None, None), ("", None), ("TRUE", True), ("false", False)])
def test_a_request_s_flag_is_none_when_absent_or_empty(raw: str | None, value: bool | None) -> None:
    assert read_flag("SmartEncoded", raw) is value


def test_a_request_s_flag_that_is_neither_is_refused_naming_it() -> None:
    with pytest.raises(ApiError) as caught:
        read_flag("SmartEncoded", "maybe" * 20)
    assert caught.value.code == 20422
    assert caught.value.message == f"SmartEncoded must be true or false, not {shown('maybe' * 20)}."
    assert shown("maybe" * 20).endswith("…") and shown("maybe") == "'maybe'"
