"""Session-wide running clouds for the real-client tests (see cloud.py)."""

import pytest

from tests.clients.cloud import RunningCloud


@pytest.fixture(scope="session")
def nova_all(tmp_path_factory):
    """nova-all on SQLite and the in-memory bus, in a subprocess."""
    cloud = RunningCloud(tmp_path_factory.mktemp("nova-all"), "all").start()
    yield cloud
    cloud.stop()


@pytest.fixture(scope="session")
def separate_daemons(tmp_path_factory):
    """nova-api, nova-conductor, nova-scheduler and two nova-computes on RabbitMQ and MariaDB."""
    cloud = RunningCloud(tmp_path_factory.mktemp("separate"), "separate", computes=2).start()
    yield cloud
    cloud.stop()


@pytest.fixture(params=["nova_all", "separate_daemons"])
def cloud(request):
    """Each test using it runs against both kinds of cloud."""
    return request.getfixturevalue(request.param)
