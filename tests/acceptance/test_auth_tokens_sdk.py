"""Changing an account's auth token without downtime, through the real `twilio` SDK's Accounts v1
resources: a secondary token authenticates beside the first; promoting it retires the first."""

from __future__ import annotations

import pytest

from tests.acceptance.conftest import Server
from tests.acceptance.support import Tenant, new_tenant, raises_twilio

pytestmark = pytest.mark.acceptance


@pytest.fixture
def tenant(shared_server: Server) -> Tenant:
    return new_tenant(shared_server, numbers=0)


def as_(tenant: Tenant, token: str) -> str:
    """The account these credentials read, or the SDK's error."""
    return str(tenant.server.client(tenant.sid, token).api.accounts(tenant.sid).fetch().sid)


def test_a_secondary_token_works_beside_the_first_until_promoted(tenant: Tenant) -> None:
    old = tenant.auth_token
    made = tenant.client().accounts.v1.secondary_auth_token().create()
    secondary = made.secondary_auth_token
    assert made.account_sid == tenant.sid and len(secondary) == 32 and secondary != old
    assert made.url.endswith("/v1/AuthTokens/Secondary") and made.date_created is not None
    assert as_(tenant, old) == as_(tenant, secondary) == tenant.sid  # both authenticate

    promoted = tenant.server.client(tenant.sid, secondary).accounts.v1.auth_token_promotion().update()
    assert (promoted.account_sid, promoted.auth_token) == (tenant.sid, secondary)
    assert promoted.url.endswith("/v1/AuthTokens/Promote")
    assert as_(tenant, secondary) == tenant.sid
    raises_twilio(lambda: as_(tenant, old), 20003, 401)
    # Nothing left to promote.
    raises_twilio(
        lambda: tenant.server.client(tenant.sid, secondary).accounts.v1.auth_token_promotion().update(), 20422, 400
    )


def test_a_secondary_token_removed_stops_working(tenant: Tenant) -> None:
    client = tenant.client()
    first = client.accounts.v1.secondary_auth_token().create().secondary_auth_token
    second = client.accounts.v1.secondary_auth_token().create().secondary_auth_token
    assert first != second
    raises_twilio(lambda: as_(tenant, first), 20003, 401)  # a new one replaces the one before
    assert client.accounts.v1.secondary_auth_token().delete() is True
    raises_twilio(lambda: as_(tenant, second), 20003, 401)
    raises_twilio(lambda: client.accounts.v1.secondary_auth_token().delete(), 20404, 404)
    assert as_(tenant, tenant.auth_token) == tenant.sid


def test_only_the_accounts_own_token_changes_its_tokens(tenant: Tenant) -> None:
    key = tenant.client().new_keys.create(friendly_name="deploy")
    with_key = tenant.server.client(key.sid, key.secret, account_sid=tenant.sid)
    raises_twilio(lambda: with_key.accounts.v1.secondary_auth_token().create(), 20003, 401)
    raises_twilio(
        lambda: tenant.server.client(tenant.sid, "0" * 32).accounts.v1.secondary_auth_token().create(), 20003, 401
    )
    # The parent acts as itself here: the subaccount's tokens are not its to change.
    parent = tenant.server.client()
    made = parent.accounts.v1.secondary_auth_token().create()
    assert made.account_sid == tenant.server.account_sid
    assert parent.accounts.v1.secondary_auth_token().delete() is True
    raises_twilio(lambda: as_(tenant, made.secondary_auth_token), 20003, 401)


def test_a_suspended_account_cannot_change_its_tokens(tenant: Tenant) -> None:
    tenant.server.cli("accounts", "status", tenant.sid, "--suspend")
    raises_twilio(lambda: tenant.client().accounts.v1.secondary_auth_token().create(), 20005, 403)
    tenant.server.cli("accounts", "status", tenant.sid, "--activate")
    assert tenant.client().accounts.v1.secondary_auth_token().create().account_sid == tenant.sid
