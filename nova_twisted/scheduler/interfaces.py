"""Filter and weigher plugins of the scheduler.

Both work on a whole :class:`~nova_twisted.scheduler.host_state.HostTable`
at once (numpy columns), not host by host: one decision over 10,000 hosts
is a handful of vector operations.
"""

from zope.interface import Attribute, Interface


class ISchedulerFilter(Interface):
    """Removes hosts that cannot take a server."""

    name = Attribute("Name used in [scheduler] enabled_filters.")

    def filter(table, spec, conf):
        """Return a numpy bool array over ``table``'s hosts: True where the host may take
        one server of ``spec`` (a RequestSpec). Must not block or touch the database."""


class IHostWeigher(Interface):
    """Ranks the hosts that passed the filters."""

    name = Attribute("Name used in [scheduler] weighers.")

    def weigh(table, spec, conf, candidates):
        """Return (raw weights as a float numpy array over ``candidates`` (an index
        array into ``table``), multiplier). Raw weights are normalised to 0..1
        across the candidates before the multiplier applies."""
