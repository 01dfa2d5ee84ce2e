"""The scheduler's picture of every compute node, as numpy columns.

Built from :func:`nova_twisted.db.placement.host_states`; updated locally
after each claim the scheduler makes; rebuilt from the database when it
ages past ``[scheduler] host_state_refresh_interval`` or a claim fails.
The database stays the judge: a stale picture can only cost a retry.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from nova_twisted.db.placement import RESOURCE_CLASSES, capacity


class HostTable:
    """Columns over all compute nodes: free resources, max units, up/enabled, zone, type."""

    def __init__(self, states: list[dict], now: dt.datetime, service_down_time: float):
        self.states = states
        n = len(states)
        self.nodenames = [s["nodename"] for s in states]
        self.hostnames = np.array([s["host"] for s in states], dtype=object)
        self.node_ids = np.array([s["id"] for s in states], dtype=np.int64)
        self.index = {name: i for i, name in enumerate(self.nodenames)}
        self.free: dict[str, np.ndarray] = {}
        self.max_unit: dict[str, np.ndarray] = {}
        for rc in RESOURCE_CLASSES:
            free = np.zeros(n)
            max_unit = np.zeros(n)
            for i, s in enumerate(states):
                inv = s["inventory"].get(rc)
                if inv is not None:
                    free[i] = capacity(inv) - s["used"].get(rc, 0)
                    max_unit[i] = inv["max_unit"]
            self.free[rc] = free
            self.max_unit[rc] = max_unit
        down = dt.timedelta(seconds=service_down_time)
        self.up = np.array(
            [
                bool(s["service"]["last_seen_up"])
                and not s["service"]["forced_down"]
                and now - s["service"]["last_seen_up"] <= down
                for s in states
            ],
            dtype=bool,
        )
        self.enabled = np.array([not s["service"]["disabled"] for s in states], dtype=bool)
        self.availability_zone = np.array([s["availability_zone"] for s in states], dtype=object)
        self.hypervisor_type = np.array([(s["hypervisor_type"] or "").lower() for s in states], dtype=object)
        self.cpu_arch = np.array([(s["cpu_arch"] or "").lower() for s in states], dtype=object)
        self.instances = np.array([s["instances"] for s in states], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.nodenames)

    def hosts_mask(self, hosts) -> np.ndarray:
        """True for the nodes whose host is in ``hosts``."""
        wanted = set(hosts or ())
        if not wanted:
            return np.zeros(len(self), dtype=bool)
        return np.fromiter((h in wanted for h in self.hostnames), dtype=bool, count=len(self))

    def consume(self, i: int, resources: dict[str, int]) -> None:
        """Account locally for a claim the database accepted on node ``i``."""
        for rc, amount in resources.items():
            if rc in self.free:
                self.free[rc][i] -= amount
        self.instances[i] += 1

    def set_free(self, i: int, free: dict[str, float]) -> None:
        for rc, value in free.items():
            if rc in self.free:
                self.free[rc][i] = value
