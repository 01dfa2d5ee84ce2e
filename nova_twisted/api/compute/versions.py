"""The versions documents: ``GET /`` and ``GET /v2.1`` (no token needed)."""

from __future__ import annotations

from nova_twisted.api.compute import microversion

UPDATED = "2013-07-23T11:33:21Z"


def _v21(app, req) -> dict:
    base = app.base_url(req)
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": microversion.MAX_VERSION,
        "min_version": microversion.MIN_VERSION,
        "updated": UPDATED,
        "links": [{"rel": "self", "href": f"{base}/v2.1/"}],
    }


async def versions(app, req):
    """List the API versions this endpoint serves."""
    return {"versions": [_v21(app, req)]}


async def version_v21(app, req):
    """Describe v2.1 and its microversion range."""
    doc = _v21(app, req)
    doc["links"].append({"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"})
    doc["media-types"] = [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]
    return {"version": doc}


def register(app) -> None:
    app.route("GET", "/", versions, auth=False)
    app.route("GET", "/v2.1", version_v21, auth=False)
