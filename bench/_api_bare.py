"""A bare Twisted Web resource answering every GET with one fixed JSON body (the baseline of bench/api.py).

Usage: python bench/_api_bare.py PORT BODY_FILE

Served like the compute API is (a Site without an access log, one
process, the default reactor), so the difference measured is everything
our API does per request beyond Twisted Web itself.
"""

from __future__ import annotations

import sys

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site


class FixedJSON(Resource):
    """Every GET answers 200 with the same JSON bytes."""

    isLeaf = True

    def __init__(self, body: bytes):
        super().__init__()
        self.body = body

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        return self.body


class QuietSite(Site):
    """No access log line per request (the compute API's Site does not log one either)."""

    noisy = False

    def log(self, request):
        pass


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "rb") as handle:
        body = handle.read()
    reactor.listenTCP(port, QuietSite(FixedJSON(body)), interface="127.0.0.1")
    print("ready", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
