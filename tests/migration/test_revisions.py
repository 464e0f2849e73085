"""What `pigeon db downgrade` says a migration's downgrade drops (pigeon.store.schema.revisions,
read from the migrations' source) is what its upgrade added: every table it made and every
column it added, so that the help text and the refusal name all the data a downgrade loses.
And which downgrades are refused (to_undo), before anything is touched."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from pigeon.store.schema import (
    MIGRATIONS,
    CannotDowngrade,
    Revision,
    SchemaTooNew,
    require_known,
    revisions,
    to_undo,
)

VERSIONS = MIGRATIONS / "versions"


def _added(path: Path) -> set[str]:
    """What a migration's upgrade() makes: `op.create_table("t", ...)` as "table t", and
    `op.add_column("t", sa.Column("c", ...))` or `b.add_column(sa.Column("c", ...))` in a
    batch of table t as "t.c". Read independently of the code under test."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    up = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade")
    made: set[str] = set()

    def text(node: ast.expr | None) -> str:
        assert isinstance(node, ast.Constant) and isinstance(node.value, str), ast.dump(node) if node else None
        return node.value

    def column_name(call: ast.expr) -> str:
        assert isinstance(call, ast.Call)
        return text(call.args[0])

    for node in ast.walk(up):
        if isinstance(node, ast.With):
            for item in node.items:
                batch = item.context_expr
                assert isinstance(batch, ast.Call)
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Call) and getattr(inner.func, "attr", None) == "add_column":
                        made.add(f"{text(batch.args[0])}.{column_name(inner.args[0])}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if not (isinstance(owner, ast.Name) and owner.id == "op"):
                continue
            if node.func.attr == "create_table":
                made.add(f"table {text(node.args[0])}")
            elif node.func.attr == "add_column":
                made.add(f"{text(node.args[0])}.{column_name(node.args[1])}")
    return made


def test_the_revisions_are_alembics_in_order() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(cfg)
    chain = revisions()
    assert [r.id for r in chain][::-1] == [s.revision for s in script.walk_revisions()]
    assert chain[-1].id == script.get_current_head()
    assert all(r.summary for r in chain)


@pytest.mark.parametrize("revision", revisions(), ids=lambda r: r.id)
def test_a_downgrade_drops_what_its_upgrade_added(revision: Revision) -> None:
    [path] = VERSIONS.glob(f"{revision.id}_*.py")
    assert set(revision.drops) == _added(path)


def test_what_some_downgrades_drop() -> None:
    drops = {r.id: r.drops for r in revisions()}
    assert drops["0020"] == ("messages.keyword_reply",)
    assert set(drops["0017"]) == {"accounts.secondary_auth_token", "accounts.secondary_auth_token_created"}
    assert drops["0016"] == ("table usage_triggers",)
    assert drops["0011"] == ()  # an index only
    assert drops["0008"] == ()  # a status rewritten back: no table or column


def test_what_a_downgrade_undoes_and_what_it_refuses() -> None:
    head = revisions()[-1].id
    assert [r.id for r in to_undo("0019", "0016")] == ["0019", "0018", "0017"]
    assert to_undo("0016", "0016") == []
    assert len(to_undo(head, "base")) == len(revisions())
    with pytest.raises(CannotDowngrade, match="0018 is newer"):
        to_undo("0016", "0018")
    with pytest.raises(CannotDowngrade, match="no schema yet"):
        to_undo(None, "0016")
    with pytest.raises(CannotDowngrade, match="no revision '16'"):
        to_undo(head, "16")
    with pytest.raises(SchemaTooNew, match="9999"):
        to_undo("9999", "0016")
    with pytest.raises(CannotDowngrade, match="no revision 'base'"):
        require_known("base")  # the command's check: a store is not emptied by it
    require_known("0001")
