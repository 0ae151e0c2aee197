"""The addresses an LB's config names for the upstream servers: IPs, never names.

nginx resolves a server's name when it loads its config, and a name that no longer
resolves (a host that is gone: a stopped sandbox container, a removed DNS record) makes
`nginx -t` refuse the whole config: not even a drain of that very host could be loaded.
So each name of the inventory's `tts_upstream_address`es is resolved on the LB itself (as
nginx would resolve it) before a split is rendered, and the LB keeps the last address each
name had (`ADDRESS_BOOK`): a name that stops resolving keeps the address it had, so its
server can still be drained. The access-log reader maps logged addresses back to
inventory names with the same book.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable

ADDRESS_BOOK = "/var/lib/voxfleet/lb-addresses.json"
RemoteRun = Callable[[str], bytes]  # a shell command on the LB -> its output

# Runs on the LB. Argument: JSON {book, names}. Output: the book, JSON {name: IPv4}, after
# resolving every name that resolves now (an IP literal resolves to itself).
BOOK_PROGRAM = r"""
import json, os, socket, sys
args = json.loads(sys.argv[1])
try:
    with open(args["book"]) as f:
        book = json.load(f)
except (OSError, ValueError):
    book = {}
changed = False
for name in args["names"]:
    try:
        address = socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0]
    except OSError:
        continue
    changed |= book.get(name) != address
    book[name] = address
if changed:
    os.makedirs(os.path.dirname(args["book"]), exist_ok=True)
    with open(args["book"] + ".tmp", "w") as f:
        json.dump(book, f, sort_keys=True)
    os.replace(args["book"] + ".tmp", args["book"])
print(json.dumps(book))
"""


class AddressBookError(OSError):
    """An LB could not tell the addresses of the upstream names; names the LB."""


def address_book(lb: str, run: RemoteRun, names: list[str]) -> dict[str, str]:
    """name -> IPv4 address as `lb` sees it now; the last address it had where a name
    does not resolve any more (absent: never resolved on this LB)."""
    args = json.dumps({"book": ADDRESS_BOOK, "names": sorted(set(names))})
    out = run(f"python3 -c {shlex.quote(BOOK_PROGRAM)} {shlex.quote(args)}")
    try:
        book = json.loads(out)
    except ValueError as exc:
        raise AddressBookError(f"LB {lb}: resolving the upstream names gave no answer: {out[:200]!r}") from exc
    return {str(name): str(address) for name, address in dict(book).items()}
