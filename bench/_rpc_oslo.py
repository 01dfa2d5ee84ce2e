"""bench/rpc.py's processes for oslo.messaging's rabbit driver: the same roles as bench/_rpc_ours.py.

oslo.messaging runs with its defaults (threading executor, its own
connection pool); concurrent calls are made from that many threads.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import warnings

warnings.simplefilter("ignore")

import oslo_messaging  # noqa: E402
from oslo_config import cfg  # noqa: E402


class BenchEndpoint:
    """What the bench calls and casts to."""

    def __init__(self):
        self.casts = 0
        self.lock = threading.Lock()

    def echo(self, ctxt, value):
        return value

    def record(self, ctxt, value):
        with self.lock:
            self.casts += 1

    def count(self, ctxt):
        return self.casts


def _transport(url):
    conf = cfg.CONF  # oslo.messaging registers some options on the global object only
    conf([], project="bench")
    return oslo_messaging.get_rpc_transport(conf, url=url.replace("amqp://", "rabbit://", 1))


def serve(url, topic):
    transport = _transport(url)
    target = oslo_messaging.Target(topic=topic, server="bench-host")
    server = oslo_messaging.get_rpc_server(transport, target, [BenchEndpoint()], executor="threading")
    server.start()
    print("ready", flush=True)
    threading.Event().wait()


def timed_calls(client, count, concurrency):
    latencies = []
    per_worker = count // concurrency

    def worker():
        for i in range(per_worker):
            started = time.perf_counter()
            client.call({}, "echo", value=i)
            latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per_worker * concurrency / (time.perf_counter() - started), latencies


def run_client(url, topic, casts, calls, concurrency):
    transport = _transport(url)
    client = oslo_messaging.get_rpc_client(transport, oslo_messaging.Target(topic=topic), timeout=60)
    client.call({}, "echo", value="warm-up")
    results = {"casts_failed": 0}
    timed_calls(client, 200, 1)  # warm-up
    results["calls_per_s_seq"], results["seq_latencies"] = timed_calls(client, calls, 1)
    results["calls_per_s_conc"], results["conc_latencies"] = timed_calls(client, calls, concurrency)
    base = client.call({}, "count")
    started = time.perf_counter()
    for i in range(casts):
        client.cast({}, "record", value=i)
    sent_at = time.perf_counter()
    while client.call({}, "count") - base < casts:
        time.sleep(0.001)
    consumed_at = time.perf_counter()
    results["casts_per_s_sent"] = casts / (sent_at - started)
    results["casts_per_s_consumed"] = casts / (consumed_at - started)
    transport.cleanup()
    print(json.dumps(results), flush=True)


def main(argv):
    mode, url, topic = argv[1:4]
    if mode == "server":
        serve(url, topic)
    else:
        run_client(url, topic, *(int(x) for x in argv[4:7]))


if __name__ == "__main__":
    main(sys.argv)
