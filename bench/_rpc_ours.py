"""bench/rpc.py's processes for our AMQP transport: ``server URL TOPIC`` or ``client URL TOPIC CASTS CALLS CONC``.

The server serves ``echo``, ``record`` (counts casts) and ``count``; the
client prints one JSON line of measurements. Casts are persistent and
confirmed by the broker (the transport's only mode); the cast stream keeps
at most ``WINDOW`` casts unconfirmed.
"""

from __future__ import annotations

import json
import sys
import time

from twisted.internet import defer, task

from nova_twisted.context import RequestContext
from nova_twisted.rpc import Manager, RPCClient, RPCServer, get_transport

WINDOW = 1000


class BenchManager(Manager):
    """What the bench calls and casts to."""

    def __init__(self):
        self.casts = 0

    def echo(self, ctxt, value):
        return value

    def record(self, ctxt, value):
        self.casts += 1

    def count(self, ctxt):
        return self.casts


async def serve(reactor, url, topic):
    transport = get_transport([url], clock=reactor)
    await transport.connect()
    await RPCServer(transport, topic, "bench-host", BenchManager()).start()
    print("ready", flush=True)
    await defer.Deferred()


async def cast_stream(client, ctxt, count):
    done = defer.Deferred()
    state = {"sent": 0, "confirmed": 0, "inflight": 0, "failed": 0}

    def confirmed(result):
        state["inflight"] -= 1
        state["confirmed"] += 1
        if state["confirmed"] == count:
            done.callback(None)
        else:
            pump()
        return None

    def failed(failure):
        state["failed"] += 1
        return confirmed(None)

    def pump():
        while state["sent"] < count and state["inflight"] < WINDOW:
            state["sent"] += 1
            state["inflight"] += 1
            client.cast(ctxt, "record", value=state["sent"]).addCallbacks(confirmed, failed)

    pump()
    await done
    return state["failed"]


async def timed_calls(client, ctxt, count, concurrency):
    latencies = []

    async def worker(n):
        for i in range(n):
            started = time.perf_counter()
            await client.call(ctxt, "echo", value=i)
            latencies.append(time.perf_counter() - started)

    per_worker = count // concurrency
    started = time.perf_counter()
    await defer.gatherResults([defer.ensureDeferred(worker(per_worker)) for _ in range(concurrency)])
    elapsed = time.perf_counter() - started
    return per_worker * concurrency / elapsed, latencies


async def run_client(reactor, url, topic, casts, calls, concurrency):
    transport = get_transport([url], clock=reactor)
    await transport.connect()
    ctxt = RequestContext(user_id="bench", project_id="bench")
    client = RPCClient(transport, topic, timeout=60)
    await client.call(ctxt, "echo", value="warm-up")
    results = {}
    # Calls first: the persistent cast stream leaves the broker busy writing for a while.
    await timed_calls(client, ctxt, 200, 1)  # warm-up
    results["calls_per_s_seq"], seq_lat = await timed_calls(client, ctxt, calls, 1)
    results["calls_per_s_conc"], conc_lat = await timed_calls(client, ctxt, calls, concurrency)
    results["seq_latencies"] = seq_lat
    results["conc_latencies"] = conc_lat
    base = await client.call(ctxt, "count")
    started = time.perf_counter()
    failed = await cast_stream(client, ctxt, casts)
    confirmed_at = time.perf_counter()
    while (await client.call(ctxt, "count")) - base < casts:
        await task.deferLater(reactor, 0.001, lambda: None)
    consumed_at = time.perf_counter()
    results["casts_failed"] = failed
    results["casts_per_s_sent"] = casts / (confirmed_at - started)
    results["casts_per_s_consumed"] = casts / (consumed_at - started)
    await transport.close()
    print(json.dumps(results), flush=True)


def main(argv):
    mode, url, topic = argv[1:4]
    if mode == "server":
        task.react(lambda reactor: defer.ensureDeferred(serve(reactor, url, topic)))
    else:
        casts, calls, concurrency = (int(x) for x in argv[4:7])
        task.react(lambda reactor: defer.ensureDeferred(run_client(reactor, url, topic, casts, calls, concurrency)))


if __name__ == "__main__":
    main(sys.argv)
