"""A consumer that takes one message and never finishes handling it (to be SIGKILLed).

Usage: transport_consumer.py AMQP_URL TOPIC EXCHANGE. Prints ``ready`` once
it listens and ``got <json>`` when a handler starts; its handlers never fire.
"""

import json
import sys

from twisted.internet import defer, task

from nova_twisted.rpc.amqp import AMQPTransport


async def main(reactor, url, topic, exchange):
    transport = AMQPTransport([url], exchange=exchange, prefetch=1, heartbeat=0)
    await transport.connect()

    def handler(message, reply_wanted):
        print("got " + json.dumps(message), flush=True)
        return defer.Deferred()  # never fires: the message stays unacknowledged

    await transport.listen(topic, None, handler)
    print("ready", flush=True)
    await defer.Deferred()  # until killed


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, *sys.argv[1:4])))
