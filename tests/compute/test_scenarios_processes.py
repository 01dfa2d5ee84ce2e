"""The compute-core scenarios on the real thing: separate twistd processes (conductor, scheduler,
three computes, nova-api for images) on RabbitMQ and MariaDB."""

import os

from twisted.internet import defer
from twisted.trial import unittest

from tests.compute.cloud import ProcessCloud
from tests.compute.scenarios import ComputeScenarios


class ProcessComputeScenarios(ComputeScenarios, unittest.TestCase):
    def setUp(self):
        tmp = self.mktemp()
        os.makedirs(tmp)
        self.cloud = ProcessCloud(os.path.abspath(tmp))

        async def start():
            await self.cloud.start()
            self.image_id = await self.cloud.make_image()

        self.addCleanup(lambda: defer.ensureDeferred(self.cloud.stop()))
        return defer.ensureDeferred(start())
