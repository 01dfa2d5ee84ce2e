"""The compute-core scenarios in one process: in-memory bus, SQLite, fake drivers."""

import os

from twisted.internet import defer
from twisted.trial import unittest

from tests.compute.cloud import InProcessCloud
from tests.compute.scenarios import ComputeScenarios


class InProcessComputeScenarios(ComputeScenarios, unittest.TestCase):
    def setUp(self):
        tmp = self.mktemp()
        os.makedirs(tmp)
        self.cloud = InProcessCloud(tmp)

        async def start():
            await self.cloud.start()
            self.image_id = await self.cloud.make_image()

        self.addCleanup(lambda: defer.ensureDeferred(self.cloud.stop()))
        return defer.ensureDeferred(start())
