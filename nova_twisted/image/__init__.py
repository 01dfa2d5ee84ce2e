"""Images: the IImageService seam, the built-in store and Glance v2 API, and the Glance v2 client.

``build_image_site(conf, database, reactor, authenticator)`` gives the
:9292 site (uploads stream to disk as they arrive);
``build_image_resource(...)`` gives just its root resource;
``build_image_service(conf, database, reactor)`` gives the built-in
IImageService for in-process use; ``build_glance_client(conf, reactor)``
gives the Glance v2 client IImageService (what compute uses: it never
touches the database).
"""

from __future__ import annotations


def build_image_resource(conf, database, reactor, authenticator):
    """The image API's root Resource; serve it with ``StreamingUploadRequest`` (see build_image_site)."""
    from nova_twisted.image.resource import build_image_resource as build

    return build(conf, database, reactor, authenticator)


def build_image_site(conf, database, reactor, authenticator):
    """The :9292 twisted.web Site: the image API with streaming uploads."""
    from nova_twisted.image.resource import build_image_site as build

    return build(conf, database, reactor, authenticator)


def build_image_service(conf, database, reactor):
    """The built-in image store (IImageService) as ``[image]`` configures it."""
    from nova_twisted.image.store import ImageStore

    return ImageStore.from_config(conf, database, reactor)


def build_glance_client(conf, reactor):
    """The Glance v2 HTTP client (IImageService) as ``[image]`` configures it."""
    from nova_twisted.image.glance import GlanceClient

    return GlanceClient.from_config(conf, reactor)
