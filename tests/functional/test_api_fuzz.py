"""Schema-driven fuzzing of the whole compute API: schemathesis against /v2.1/openapi.json of a running nova-all.

Every operation of the OpenAPI document gets generated requests (bodies
from the request schemas, query parameters, path parameters, the
microversion header). Most requests address real resources (a server, its
metadata and actions, a key pair, a server group, a flavor, a
hypervisor, a service, the projects) so they reach the handlers' logic,
not only the 404 path; some keep their random ids and microversions. No
answer may be a 5xx, take longer than the timeout, or carry a traceback;
every 4xx must be Nova's error body. Examples are bounded and
derandomized, so the run is repeatable and takes well under two minutes.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.clients.cloud import RunningCloud

MAX_EXAMPLES = int(os.environ.get("NOVA_FUZZ_EXAMPLES", "25"))
REQUEST_TIMEOUT = 10.0
VERSIONS = ("2.1", "2.6", "2.19", "2.26", "2.37", "2.47", "2.58", "2.63", "2.73", "2.75", "latest")
#: Deleting these would take the fixtures away from the other operations: they keep their random ids.
KEEP_RANDOM_IDS = {
    ("DELETE", "/v2.1/servers/{server_id}"),
    ("DELETE", "/v2.1/flavors/{flavor_id}"),
    ("DELETE", "/v2.1/os-keypairs/{name}"),
    ("DELETE", "/v2.1/os-server-groups/{group_id}"),
    ("DELETE", "/v2.1/os-services/{action}"),
    ("PUT", "/v2.1/os-services/{action}"),
    ("DELETE", "/v2.1/os-quota-sets/{project_id}"),
    ("PUT", "/v2.1/os-quota-sets/{project_id}"),
}


def _http(cloud, method, path, body=None, token=None, version="2.79"):
    request = urllib.request.Request(
        cloud.compute_url.rsplit("/v2.1", 1)[0] + path,
        json.dumps(body).encode() if body is not None else None,
        {"X-Auth-Token": token, "Content-Type": "application/json", "OpenStack-API-Version": f"compute {version}"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        data = answer.read()
        return json.loads(data) if data else None


class Fixtures:
    """A running nova-all and the ids of real resources in it."""

    def __init__(self, cloud):
        self.cloud = cloud
        self.base_url = cloud.compute_url.rsplit("/v2.1", 1)[0]
        self.tokens = {"admin": cloud.token("admin"), "demo": cloud.token("demo")}
        demo, admin = self.tokens["demo"], self.tokens["admin"]
        server = _http(
            cloud,
            "POST",
            "/v2.1/servers",
            {"server": {"name": "fuzz", "imageRef": cloud.image_id, "flavorRef": "1", "networks": "none"}},
            demo,
        )["server"]
        deadline = time.monotonic() + 60
        while _http(cloud, "GET", f"/v2.1/servers/{server['id']}", token=demo)["server"]["status"] != "ACTIVE":
            assert time.monotonic() < deadline, "the fuzz server never became ACTIVE"
            time.sleep(0.2)
        _http(cloud, "POST", f"/v2.1/servers/{server['id']}/metadata", {"metadata": {"fuzz": "yes"}}, demo)
        _http(cloud, "POST", "/v2.1/os-keypairs", {"keypair": {"name": "fuzz-key"}}, demo)
        group = _http(
            cloud, "POST", "/v2.1/os-server-groups", {"server_group": {"name": "fuzz", "policy": "affinity"}}, demo
        )["server_group"]
        actions = _http(cloud, "GET", f"/v2.1/servers/{server['id']}/os-instance-actions", token=demo)
        hypervisors = _http(cloud, "GET", "/v2.1/os-hypervisors", token=admin)["hypervisors"]
        project = _http(cloud, "GET", f"/v2.1/servers/{server['id']}", token=demo)["server"]["tenant_id"]
        self.values = {
            "server_id": server["id"],
            "key": "fuzz",
            "request_id": actions["instanceActions"][0]["request_id"],
            "name": "fuzz-key",
            "group_id": group["id"],
            "flavor_id": "1",
            "hypervisor_id": str(hypervisors[0]["id"]),
            "pattern": hypervisors[0]["hypervisor_hostname"],
            "project_id": project,
            "service_id": "1",
            "action": "enable",
        }


@pytest.fixture(scope="module")
def fuzz_cloud(tmp_path_factory):
    cloud = RunningCloud(tmp_path_factory.mktemp("fuzz"), "all").start()
    try:
        yield Fixtures(cloud)
    finally:
        cloud.stop()


def _document() -> dict:
    """The document nova-all serves, built from the same router (collection needs it before the cloud runs)."""
    from nova_twisted import conf as confmod
    from nova_twisted.api.compute.app import ComputeApp
    from nova_twisted.api.compute.openapi import document_for

    conf = confmod.load((), {("database", "connection"): "sqlite://"})
    return document_for(ComputeApp(conf, None, None, None, None).router)


schema = schemathesis.openapi.from_dict(_document())


def _choice(case) -> int:
    seed = repr((case.method, case.path, case.path_parameters, case.query, case.body, case.headers))
    return zlib.crc32(seed.encode("utf-8", "surrogatepass"))


def _is_nova_error(body) -> bool:
    if not isinstance(body, dict) or len(body) != 1:
        return False
    (fault,) = body.values()
    return isinstance(fault, dict) and isinstance(fault.get("code"), int) and isinstance(fault.get("message"), str)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_server_error_a_hang_or_a_traceback(case, fuzz_cloud):
    choice = _choice(case)
    route = (case.method.upper(), case.operation.path)
    if case.path_parameters and route not in KEEP_RANDOM_IDS and choice % 4:
        for name in case.path_parameters:
            if name in fuzz_cloud.values:
                case.path_parameters[name] = fuzz_cloud.values[name]
    user = "admin" if choice % 3 == 0 else "demo"
    headers = {"X-Auth-Token": fuzz_cloud.tokens[user]}
    if choice % 5:
        headers["OpenStack-API-Version"] = f"compute {VERSIONS[choice % len(VERSIONS)]}"
    started = time.monotonic()
    try:
        response = case.call(base_url=fuzz_cloud.base_url, headers=headers, timeout=REQUEST_TIMEOUT)
    except (TimeoutError, urllib.error.URLError) as exc:  # pragma: no cover - reported as the failure it is
        pytest.fail(f"no answer within {REQUEST_TIMEOUT}s: {exc}\n{case.as_curl_command(headers)}")
    elapsed = time.monotonic() - started
    reproduce = case.as_curl_command(headers)
    if response.status_code == 501:
        # Nova's deliberate "not implemented" (e.g. a hypervisor's uptime from the fake driver), not a failure.
        assert "notImplemented" in response.json(), f"{response.text[:500]}\n{reproduce}"
    else:
        assert response.status_code < 500, f"{response.status_code} {response.text[:500]}\n{reproduce}"
    assert elapsed < REQUEST_TIMEOUT, f"took {elapsed:.1f}s\n{reproduce}"
    assert "Traceback" not in response.text and 'File "' not in response.text, f"{response.text[:500]}\n{reproduce}"
    if response.status_code >= 400 and response.content:
        assert _is_nova_error(response.json()), f"not Nova's error body: {response.text[:300]}\n{reproduce}"
