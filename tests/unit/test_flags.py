"""pigeon.domain.flags: Twilio's booleans, true or false in any case, nothing else."""

from __future__ import annotations

import pytest

from pigeon.domain.flags import flag


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False)]
)
def test_true_and_false_in_any_case(text: str, value: bool) -> None:
    assert flag(text) is value


@pytest.mark.parametrize("text", ["", "maybe", "yes", "no", "1", "0", "y", " true", "true ", "truee"])
def test_anything_else_is_none(text: str) -> None:
    assert flag(text) is None
