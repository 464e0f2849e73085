"""A STOP texted to a number of a Messaging Service opts the person out of the whole service. When
the number leaves the service (taken out of its pool, the service deleted, the number released),
they stay opted out of that number: the service's opt-outs are copied as the number's own, with
the STOP's evidence, and START to the number lifts them as before. Both stores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app import optouts as optout_use
from pigeon.app import services as service_use
from pigeon.app.inbound import receive
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.errors import ApiError
from pigeon.ports import InboundSms
from pigeon.store.engine import Database
from pigeon.store.optouts import list_opt_outs, record_opt_out
from pigeon.testing import FrozenClock

NUMBER, SIBLING = "+14155550171", "+14155550172"
HANDSET, EARLIER, OTHER = "+14155557171", "+14155557172", "+14155557173"
PATH = "/p"


class Setup:
    def __init__(self, db: Database, clock: FrozenClock) -> None:
        self.db, self.clock = db, clock
        now = clock.now()
        with db.write() as conn:
            self.account = str(account_use.create_account(conn, friendly_name="pool", now=now)["sid"])
            self.numbers = {
                n: number_use.provision(conn, account_sid=self.account, phone_number=n, now=now)["sid"]
                for n in (NUMBER, SIBLING)
            }
            self.service = str(service_use.create(conn, self.account, {"FriendlyName": "pool"}, now)["sid"])
            for sid in self.numbers.values():
                service_use.add_number(conn, self.account, self.service, sid, short_code=False, path=PATH, now=now)
            # Opted out of NUMBER alone before it joined the service: that row is kept as it is.
            record_opt_out(
                conn,
                account_sid=self.account,
                sender=NUMBER,
                recipient=EARLIER,
                scope="number",
                keyword="QUIT",
                inbound_message_sid=None,
                now=now,
            )

    def text(self, body: str, sender: str = HANDSET, to: str = NUMBER) -> None:
        self.clock.advance(1)
        with self.db.write() as conn:
            receive(
                conn,
                InboundSms(carrier="simulator", sender=sender, recipient=to, body=body),
                now=self.clock.now(),
                base_url="https://pigeon.example.com",
            )

    def send_code(self, to: str = HANDSET, from_: str = NUMBER) -> int | None:
        """The error a send from `from_` to `to` gets, None when it is taken."""
        with self.db.read() as conn:
            try:
                prepare_message(conn, self.account, SendRequest(to=to, from_=from_, body="hi"), self.clock.now())
            except ApiError as exc:
                return exc.code
        return None

    def opt_outs(self, recipient: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return list_opt_outs(conn, account_sid=self.account, recipient=recipient)


@pytest.fixture
def setup(db: Database, clock: FrozenClock) -> Setup:
    return Setup(db, clock)


def _remove_from_pool(s: Setup) -> None:
    with s.db.write() as conn:
        service_use.remove_number(
            conn, s.account, s.service, s.numbers[NUMBER], short_code=False, path=PATH, now=s.clock.now()
        )


def _delete_service(s: Setup) -> None:
    with s.db.write() as conn:
        service_use.delete(conn, s.account, s.service, PATH, s.clock.now())


LEAVING: dict[str, Callable[[Setup], None]] = {"pool removal": _remove_from_pool, "service deleted": _delete_service}


@pytest.mark.parametrize("leave", LEAVING.values(), ids=LEAVING.keys())
def test_an_opt_out_of_the_service_stays_on_the_number_that_leaves_it(
    setup: Setup, leave: Callable[[Setup], None]
) -> None:
    setup.text("STOP")
    setup.text("stop", sender=EARLIER)  # service-wide now too, beside its own number-scope row
    [stop] = setup.opt_outs(HANDSET)
    assert (stop["sender"], stop["scope"]) == (setup.service, "service")
    assert setup.send_code() == 21610

    leave(setup)

    assert setup.send_code() == 21610
    kept = {(r["sender"], r["scope"]): r for r in setup.opt_outs(HANDSET)}
    copy = kept[(NUMBER, "number")]
    assert (copy["keyword"], copy["inbound_message_sid"], copy["date_created"]) == (
        stop["keyword"],
        stop["inbound_message_sid"],
        stop["date_created"],
    )
    # The person's own opt-out of the number is not doubled, nor overwritten by the service's.
    [earlier] = [r for r in setup.opt_outs(EARLIER) if r["sender"] == NUMBER]
    assert (earlier["keyword"], earlier["scope"]) == ("QUIT", "number")
    # Nobody else is opted out of the number by it.
    assert setup.send_code(to=OTHER) is None
    # The list shows each row with its own scope.
    with setup.db.read() as conn:
        views = [optout_use.view(r) for r in optout_use.list_for_account(conn, setup.account, recipient=HANDSET)]
    assert {(v["sender"], v["scope"]) for v in views} >= {(NUMBER, "number")}

    # START to the number lifts it, as it lifts any opt-out of the number.
    setup.text("START")
    assert setup.send_code() is None
    assert [r for r in setup.opt_outs(HANDSET) if r["sender"] == NUMBER] == []


def test_the_numbers_still_in_the_service_keep_the_service_wide_opt_out(setup: Setup) -> None:
    setup.text("STOP")
    _remove_from_pool(setup)
    assert setup.send_code(from_=SIBLING) == 21610
    assert {(r["sender"], r["scope"]) for r in setup.opt_outs(HANDSET)} == {
        (setup.service, "service"),
        (NUMBER, "number"),
    }
    assert [r for r in setup.opt_outs(HANDSET) if r["sender"] == SIBLING] == []


def test_a_released_number_keeps_the_service_opt_outs_on_its_account(setup: Setup) -> None:
    """Bought again by the account, the number is still opted out for who said STOP to it."""
    setup.text("STOP")
    with setup.db.write() as conn:
        number_use.release(conn, setup.account, setup.numbers[NUMBER], PATH, setup.clock.now())
        number_use.provision(conn, account_sid=setup.account, phone_number=NUMBER, now=setup.clock.now())
    assert setup.send_code() == 21610
    assert (NUMBER, "number") in {(r["sender"], r["scope"]) for r in setup.opt_outs(HANDSET)}
