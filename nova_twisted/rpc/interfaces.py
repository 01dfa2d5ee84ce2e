"""The message bus seam: what every transport (AMQP, in-memory) promises."""

from zope.interface import Attribute, Interface


class IMessageTransport(Interface):
    """Moves messages (JSON-able dicts) between services by topic and server.

    Addressing, as in Nova: a *topic* (``scheduler``, ``compute``) has one
    shared work queue (any one server of the topic takes each message), each
    server of a topic has its own queue (``compute.<host>``), and a fanout
    reaches every server listening on a topic.

    Delivery is always asynchronous: no method ever runs a handler before
    it returns (never re-entrant). Messages are encoded on send and decoded
    on receipt, so sender and receiver never share objects.
    """

    connected = Attribute("True while the transport can send without waiting.")

    def connect():
        """Open the transport. Returns a Deferred firing when it can send and listen,
        or failing with MessagingError if the bus cannot be reached."""

    def close():
        """Stop listening and disconnect. Returns a Deferred firing when done.
        Calls still waiting for replies fail with MessagingError. Handlers
        still running are not waited for (use IListener.stop first for that)."""

    def cast(topic, server, message):
        """Send ``message`` to one server of ``topic`` (to ``server`` if given).

        Returns a Deferred that fires (with None) once the bus holds the
        message (on AMQP: the broker confirmed it, persistently); it fails
        with MessagingError if the message could not be handed over. The
        caller does not wait for the handler.
        """

    def fanout(topic, message):
        """Send ``message`` to every server currently listening on ``topic``.
        Returns a Deferred firing once the bus holds it."""

    def call(topic, server, message, timeout):
        """Send ``message`` and wait for the handler's reply.

        Returns a Deferred firing with the reply dict the handler returned,
        or failing with MessagingTimeout after ``timeout`` seconds (or with
        MessagingError if the transport is closed meanwhile). Replies are
        matched to calls by correlation id, so concurrent calls may be
        answered in any order. A call made before any server listens waits
        for one (until its timeout).
        """

    def listen(topic, server, handler):
        """Consume ``topic``'s shared queue, ``topic.server``'s queue and the
        topic's fanout, calling ``handler(message, reply_wanted)`` for each.

        ``handler`` returns the reply dict (sent back to a caller when
        ``reply_wanted``) or None, or a Deferred firing with one of them. A
        message is acknowledged only after that Deferred fired, so if the
        listener dies mid-handler the message is delivered again (handlers
        must be idempotent). A message that cannot be decoded never reaches
        the handler: it is logged and dead-lettered, and listening goes on.

        Returns a Deferred firing with an :class:`IListener`.
        """


class IListener(Interface):
    """One topic/server subscription made by :meth:`IMessageTransport.listen`."""

    in_flight = Attribute("Number of handlers running now.")

    def stop():
        """Stop taking new messages; return a Deferred that fires when the
        handlers in flight have finished (their messages acknowledged)."""
