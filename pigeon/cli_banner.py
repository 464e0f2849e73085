"""What `pigeon serve` prints when it starts: the first start's account with examples filled
in, ready to paste, and the address it listens on.

`pigeon.cli` prints them; they are text only, so that a test can read them as an operator
would and paste the examples.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pigeon import bootstrap
from pigeon.config import Settings

#: A handset of the built-in network, as in the README: a 555 number no first start makes.
HANDSET = "+14155550123"


def program() -> str:
    """The `pigeon` command as it was started (`.venv/bin/pigeon` under `make run`), so that
    the examples paste as they are; plain `pigeon` when it was started some other way."""
    started = sys.argv[0] if sys.argv else ""
    return started if Path(started).name == "pigeon" else "pigeon"


def first_run_banner(settings: Settings, first: bootstrap.FirstRun, *, command: str = "pigeon") -> str:
    acc = first.account
    sid, token = acc["sid"], acc["auth_token"]
    sender = first.numbers[0]["phone_number"]
    base = settings.base_url
    return f"""
Pigeon created your account. The auth token is shown this once; keep it.

  Account SID  {sid}
  Auth token   {token}
  Numbers      {", ".join(n["phone_number"] for n in first.numbers)}

Send a message with curl:

  curl -X POST {base}/2010-04-01/Accounts/{sid}/Messages.json \\
    -u {sid}:{token} \\
    --data-urlencode "To=+14155552671" \\
    --data-urlencode "From={sender}" \\
    --data-urlencode "Body=Hello from Pigeon"

Or with the twilio Python SDK (pip install twilio):

  from twilio.rest import Client
  client = Client("{sid}", "{token}")
  client.api.base_url = "{base}"
  message = client.messages.create(to="+14155552671", from_="{sender}", body="Hello from Pigeon")
  print(message.sid, message.status)

Text your number {sender} from a simulated phone (your webhook, if it has one, is called):

  {command} simulate inbound --from {HANDSET} --to {sender} --body "hello"
"""


def listening(settings: Settings, where: str = "") -> str:
    """The address the API listens on, and the public URL on a line of its own when one is set:
    it is what clients and links use, but not where this process listens."""
    lines = [f"Listening on {settings.listen_url}{where}"]
    if settings.public_url:
        lines.append(f"Public URL   {settings.base_url} (PIGEON_PUBLIC_URL): clients, links and the examples use it")
    return "\n".join(lines)
