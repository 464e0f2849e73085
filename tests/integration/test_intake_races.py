"""PostgreSQL: a STOP taken while its number changes hands. A move to another account, leaving a
Messaging Service (taken out of the pool, the service deleted) and a release copy the number's
opt-outs to where it goes; a STOP recorded beside such a change, on the side the number just
left, would not be copied, and whoever said STOP would be texted from the number again.

The intake holds the number's row (`pigeon.store.numbers.hold_by_number`) and the changes hold
it too, so the two take turns: each test holds one side's transaction open until the other
waits for it (`lock_waits.while_held`), in both orders. Before, the intake read the number
without a lock and nothing waited."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import Connection

from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app import services as service_use
from pigeon.app.inbound import Intake, receive
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.errors import ApiError
from pigeon.ports import InboundSms
from pigeon.store.engine import Database
from pigeon.store.optouts import list_opt_outs
from pigeon.testing import FrozenClock
from tests.integration.lock_waits import while_held

pytestmark = pytest.mark.postgres

NUMBER, HANDSET = "+14155550191", "+14155557191"
PATH = "/p"

Change = Callable[[Connection], object]


class Family:
    """A main account with a subaccount; NUMBER on the main account, in its Messaging Service."""

    def __init__(self, db: Database, clock: FrozenClock) -> None:
        self.db, self.clock = db, clock
        now = clock.now()
        with db.write() as conn:
            self.main = str(account_use.create_account(conn, friendly_name="main", now=now)["sid"])
            self.sub = str(account_use.create_subaccount(conn, self.main, friendly_name="sub", now=now)["sid"])
            settings = {"sms_url": "https://app.example.com/sms"}
            self.number = str(
                number_use.provision(conn, account_sid=self.main, phone_number=NUMBER, now=now, settings=settings)[
                    "sid"
                ]
            )
            self.service = str(service_use.create(conn, self.main, {"FriendlyName": "pool"}, now)["sid"])

    def join_service(self) -> None:
        with self.db.write() as conn:
            service_use.add_number(
                conn, self.main, self.service, self.number, short_code=False, path=PATH, now=self.clock.now()
            )

    def stop(self, conn: Connection) -> Intake:
        return receive(
            conn,
            InboundSms(carrier="simulator", sender=HANDSET, recipient=NUMBER, body="STOP"),
            now=self.clock.now(),
            base_url="https://pigeon.example.com",
        )

    def in_a_transaction(self, change: Change) -> Callable[[], object]:
        def run() -> object:
            with self.db.write() as conn:
                return change(conn)

        return run

    def move(self, conn: Connection) -> object:
        params = {"AccountSid": self.sub}
        return number_use.update(conn, self.main, self.number, PATH, params, self.clock.now(), acting_sid=self.main)

    def remove_from_pool(self, conn: Connection) -> None:
        service_use.remove_number(
            conn, self.main, self.service, self.number, short_code=False, path=PATH, now=self.clock.now()
        )

    def delete_service(self, conn: Connection) -> None:
        service_use.delete(conn, self.main, self.service, PATH, self.clock.now())

    def send_code(self, account: str) -> int | None:
        """The error a send from NUMBER to the handset gets on `account`; None when taken."""
        with self.db.read() as conn:
            try:
                prepare_message(conn, account, SendRequest(to=HANDSET, from_=NUMBER, body="hi"), self.clock.now())
            except ApiError as exc:
                return exc.code
        return None

    def opt_outs(self, account: str) -> set[tuple[str, str]]:
        with self.db.read() as conn:
            return {(r["sender"], r["scope"]) for r in list_opt_outs(conn, account_sid=account, recipient=HANDSET)}


def race(f: Family, change: Change, *, stop_first: bool) -> None:
    """The STOP and `change`, each in its transaction, the first one held open until the other
    waits for it (or is done, when nothing makes it wait)."""
    if stop_first:
        while_held(f.db, f.stop, f.in_a_transaction(change))
    else:
        while_held(f.db, change, f.in_a_transaction(f.stop))


ORDERS = pytest.mark.parametrize("stop_first", [False, True], ids=["change first", "stop first"])


@ORDERS
def test_a_stop_taken_while_its_number_moves_goes_with_the_number(
    pg: Database, clock: FrozenClock, stop_first: bool
) -> None:
    f = Family(pg, clock)

    race(f, f.move, stop_first=stop_first)

    # The new owner cannot text who said STOP (before: accepted, the opt-out was left behind
    # on the main account, the STOP taken on a number that had just left it).
    assert f.send_code(f.sub) == 21610
    assert f.opt_outs(f.sub) == {(NUMBER, "number")}


LEAVING = {"pool removal": Family.remove_from_pool, "service deleted": Family.delete_service}


@ORDERS
@pytest.mark.parametrize("leave", LEAVING.values(), ids=LEAVING.keys())
def test_a_stop_taken_while_its_number_leaves_its_service_stays_on_the_number(
    pg: Database, clock: FrozenClock, leave: Callable[[Family, Connection], None], stop_first: bool
) -> None:
    f = Family(pg, clock)
    f.join_service()

    race(f, lambda conn: leave(f, conn), stop_first=stop_first)

    # Before: the STOP was recorded for the service the number had just left, and nothing
    # stopped the number from texting the person again.
    assert f.send_code(f.main) == 21610
    assert (NUMBER, "number") in f.opt_outs(f.main)


def test_a_release_waits_for_a_stop_being_taken_and_keeps_its_opt_out(pg: Database, clock: FrozenClock) -> None:
    """Bought again, the number is still opted out for who said STOP to it, in its service as
    it was. Had the release gone first, the STOP would have found no number (kept unroutable)."""
    f = Family(pg, clock)
    f.join_service()

    race(f, lambda conn: number_use.release(conn, f.main, f.number, PATH, clock.now()), stop_first=True)

    with pg.write() as conn:
        number_use.provision(conn, account_sid=f.main, phone_number=NUMBER, now=clock.now())
    assert f.send_code(f.main) == 21610
