"""The command line prints names and texts as they are: its consoles read no markup unless a
line asks for it. Rich reads "[ops]" in "[ops] team" as a style and drops it, so a console
with markup on prints every user's and carrier's text at risk."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pigeon

PACKAGE = Path(pigeon.__file__).parent
MODULES = sorted([*PACKAGE.glob("cli*.py"), *(PACKAGE / "doctor").glob("*.py")])


def _calls(path: Path, name: str) -> list[ast.Call]:
    tree = ast.parse(path.read_text())
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and (
            (isinstance(n.func, ast.Name) and n.func.id == name)
            or (isinstance(n.func, ast.Attribute) and n.func.attr == name)
        )
    ]


def _keyword(call: ast.Call, name: str) -> object:
    for k in call.keywords:
        if k.arg == name and isinstance(k.value, ast.Constant):
            return k.value.value
    return None


def _text_of(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text_of(v) for v in node.values if isinstance(v, ast.Constant))
    return ""


def _uses_escape(call: ast.Call) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "escape" for n in ast.walk(call)
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_consoles_read_no_markup_by_default(path: Path) -> None:
    for call in _calls(path, "Console"):
        assert _keyword(call, "markup") is False, f"{path.name}:{call.lineno}: Console() without markup=False"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_styled_lines_ask_for_markup(path: Path) -> None:
    for call in _calls(path, "print"):
        styled = any("[/" in _text_of(a) for a in call.args) or _uses_escape(call)
        if styled:
            assert _keyword(call, "markup") is True, (
                f"{path.name}:{call.lineno}: styled or escaped, without markup=True"
            )


def test_the_modules_are_found() -> None:
    assert {"cli.py", "cli_debugger.py", "render.py"} <= {p.name for p in MODULES}
