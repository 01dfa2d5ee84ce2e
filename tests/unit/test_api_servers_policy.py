"""etc/policy.yaml is current and complete, and overriding a servers rule from a policy file takes effect."""

from __future__ import annotations

import os

import yaml
from twisted.trial import unittest

from nova_twisted.api.compute.app import RESOURCE_MODULES
from nova_twisted.api.compute.policies import default_rules
from nova_twisted.api.compute.policy_sample import generate
from tests.identity_fixtures import async_test
from tests.servers_api_helpers import serve

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(ROOT, "etc", "policy.yaml")


def _uncommented(text: str) -> dict:
    return yaml.safe_load("\n".join(line[1:] if line.startswith('#"') else line for line in text.splitlines()))


class PolicySample(unittest.TestCase):
    def test_the_sample_is_current(self):
        with open(SAMPLE, encoding="utf-8") as handle:
            self.assertEqual(
                handle.read(),
                generate(),
                "etc/policy.yaml is stale: python -m nova_twisted.api.compute.policy_sample > etc/policy.yaml",
            )

    def test_uncommenting_every_line_gives_exactly_the_defaults(self):
        self.assertEqual(_uncommented(generate()), default_rules(RESOURCE_MODULES))

    def test_every_servers_family_rule_has_a_description_and_its_operations(self):
        text = generate()
        blocks = text.split("\n\n")
        for block in blocks:
            if '#"os_compute_api:servers:' in block:
                lines = block.strip().splitlines()
                self.assertTrue(lines[0].startswith("# ") and "rule." not in lines[0], block)
                self.assertTrue(any(line.startswith("#   ") and "/v2.1/" in line for line in lines), block)


class PolicyOverrides(unittest.TestCase):
    @async_test
    async def test_a_policy_file_can_forbid_listing_servers_to_members(self):
        path = os.path.abspath(self.mktemp())
        with open(path, "w", encoding="utf-8") as handle:
            handle.write('"os_compute_api:servers:index": "rule:admin_api"\n')
        api = await serve(self, extra={("api", "policy_file"): path})
        code, _, body = await api.request("GET", "/v2.1/servers")
        self.assertEqual(code, 403)
        self.assertEqual(
            body["forbidden"]["message"], "Policy doesn't allow os_compute_api:servers:index to be performed."
        )
        code, _, _ = await api.request("GET", "/v2.1/servers", user="admin")
        self.assertEqual(code, 200)
        code, _, _ = await api.request("GET", "/v2.1/servers/detail")
        self.assertEqual(code, 200)
