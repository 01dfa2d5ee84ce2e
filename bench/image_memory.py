"""Bench: the image API process's resident memory while a big image goes up and comes back down.

Starts the built-in image API (SQLite, a scratch state directory, a static
token) in a separate process, uploads a generated file of ``--size`` bytes
through ``PUT /v2/images/{id}/file``, downloads it again through ``GET
.../file`` (and one ``Range`` request), checks the checksums, and samples
the server's RSS with psutil every few milliseconds throughout. Prints the
baseline, the peak growth during each transfer, and the throughput; exits 1
if the growth reaches ``--limit-mib`` or a checksum differs.

    .venv/bin/python bench/image_memory.py --size 2G
    .venv/bin/python bench/image_memory.py --size 256M --json
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TOKEN = "bench-token"


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("B").rstrip("I")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


# -- the server process ----------------------------------------------------------------
def serve(state: str, port_file: str, plain_site: bool) -> None:
    """Run the image API on a free loopback port until killed; write the port to ``port_file``."""
    import datetime as dt

    from twisted.internet import defer, reactor
    from twisted.web import server
    from zope.interface import implementer

    from nova_twisted import exception
    from nova_twisted.api.auth import Authenticator, ITokenValidator
    from nova_twisted.db import migration
    from nova_twisted.db.api import Database
    from nova_twisted.image.resource import ImageAPI, StreamingUploadRequest
    from nova_twisted.image.store import ImageStore

    @implementer(ITokenValidator)
    class OneToken:
        def validate(self, token):
            if token != TOKEN:
                return defer.fail(exception.NotAuthenticated())
            expires = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=1)
            return defer.succeed(
                {"user_id": "bench", "project_id": "bench", "roles": ["member"], "expires_at": expires}
            )

    url = f"sqlite:///{state}/nova.sqlite"
    migration.sync(url)
    database = Database(url, reactor)
    store = ImageStore(database, reactor, os.path.join(state, "images"))
    api = ImageAPI(store, Authenticator(OneToken(), reactor))
    site = server.Site(api.router, requestFactory=server.Request if plain_site else StreamingUploadRequest)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    with open(port_file + ".tmp", "w") as handle:
        handle.write(str(port.getHost().port))
    os.rename(port_file + ".tmp", port_file)
    reactor.run()


# -- the measuring side -------------------------------------------------------------------
class RSSSampler(threading.Thread):
    """Samples a process's RSS until stopped; ``peak`` is the highest seen since the last reset."""

    def __init__(self, pid: int, interval: float = 0.01):
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def rss(self) -> int:
        return self.process.memory_info().rss

    def reset(self) -> int:
        self.peak = self.rss()
        return self.peak

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.rss())
            except Exception:  # noqa: BLE001 - the process ended
                return
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()


def make_source(path: str, size: int) -> str:
    """Write ``size`` bytes (a random 1 MiB block, varied per MiB) and return their md5."""
    block = bytearray(os.urandom(1 << 20))
    md5 = hashlib.md5()
    with open(path, "wb") as handle:
        written, counter = 0, 0
        while written < size:
            block[:8] = counter.to_bytes(8, "little")
            chunk = bytes(block[: min(len(block), size - written)])
            handle.write(chunk)
            md5.update(chunk)
            written += len(chunk)
            counter += 1
    return md5.hexdigest()


def request(port: int, method: str, path: str, body=None, headers=None, timeout=600):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, blocksize=1 << 20)
    all_headers = {"X-Auth-Token": TOKEN, "Accept": "application/json"}
    all_headers.update(headers or {})
    conn.request(method, path, body=body, headers=all_headers)
    return conn, conn.getresponse()


def run(size: int, limit_mib: float, keep: bool, plain_site: bool) -> dict:
    work = tempfile.mkdtemp(prefix="nova-image-bench-")
    state = os.path.join(work, "state")
    os.makedirs(state)
    port_file = os.path.join(work, "port")
    server = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", state, "--port-file", port_file]
        + (["--plain-site"] if plain_site else []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(port_file):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"image API did not start: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        port = int(open(port_file).read())
        source = os.path.join(work, "source.img")
        md5 = make_source(source, size)

        body = json.dumps({"name": "bench", "disk_format": "raw", "container_format": "bare"})
        conn, response = request(port, "POST", "/v2/images", body, {"Content-Type": "application/json"})
        image = json.loads(response.read())
        conn.close()
        # Warm up code paths (a small upload and download) before the baseline.
        conn, response = request(port, "POST", "/v2/images", body, {"Content-Type": "application/json"})
        warm = json.loads(response.read())
        conn.close()
        conn, response = request(
            port, "PUT", f"/v2/images/{warm['id']}/file", b"x" * 300_000, {"Content-Type": "application/octet-stream"}
        )
        response.read()
        conn.close()
        conn, response = request(port, "GET", f"/v2/images/{warm['id']}/file")
        response.read()
        conn.close()

        sampler = RSSSampler(server.pid)
        sampler.start()
        time.sleep(0.2)
        baseline = sampler.reset()

        started = time.monotonic()
        with open(source, "rb") as handle:
            conn, response = request(
                port,
                "PUT",
                f"/v2/images/{image['id']}/file",
                handle,
                {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )
            response.read()
            conn.close()
        upload_seconds = time.monotonic() - started
        if response.status != 204:
            raise RuntimeError(f"upload answered {response.status}")
        upload_peak = sampler.peak

        conn, response = request(port, "GET", f"/v2/images/{image['id']}")
        shown = json.loads(response.read())
        conn.close()

        sampler.reset()
        started = time.monotonic()
        conn, response = request(port, "GET", f"/v2/images/{image['id']}/file")
        got = hashlib.md5()
        received = 0
        while True:
            chunk = response.read(1 << 20)
            if not chunk:
                break
            got.update(chunk)
            received += len(chunk)
        conn.close()
        download_seconds = time.monotonic() - started
        download_peak = sampler.peak
        content_md5 = response.getheader("content-md5")

        conn, response = request(port, "GET", f"/v2/images/{image['id']}/file", headers={"Range": "bytes=-1000"})
        tail = response.read()
        conn.close()
        with open(source, "rb") as handle:
            handle.seek(max(0, size - 1000))
            expected_tail = handle.read()
        sampler.stop()

        mib = 1 << 20
        result = {
            "size_bytes": size,
            "baseline_rss_mib": round(baseline / mib, 1),
            "upload_growth_mib": round((upload_peak - baseline) / mib, 1),
            "download_growth_mib": round((download_peak - baseline) / mib, 1),
            "upload_mib_per_s": round(size / mib / max(upload_seconds, 1e-6), 1),
            "download_mib_per_s": round(received / mib / max(download_seconds, 1e-6), 1),
            "checksums_match": shown["checksum"] == md5 == got.hexdigest() == content_md5 and received == size,
            "range_ok": response.status == 206 and tail == expected_tail,
            "limit_mib": limit_mib,
            "streaming_request": not plain_site,
        }
        result["ok"] = (
            result["checksums_match"]
            and result["range_ok"]
            and max(result["upload_growth_mib"], result["download_growth_mib"]) < limit_mib
        )
        return result
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2G", help="image size, e.g. 2G, 256M (default 2G)")
    parser.add_argument("--limit-mib", type=float, default=64.0, help="allowed RSS growth (default 64)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--plain-site", action="store_true", help="serve with Twisted's plain Request")
    parser.add_argument("--serve", metavar="STATE", help=argparse.SUPPRESS)
    parser.add_argument("--port-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port_file, args.plain_site)
        return 0
    result = run(parse_size(args.size), args.limit_mib, args.keep, args.plain_site)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:22} {value}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
