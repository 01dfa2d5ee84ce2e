"""The identity service: users, projects, roles, tokens and EC2 credentials (Keystone v3 compatible).

``build_identity_resource(conf, database, reactor)`` gives the resource to
serve on :5000 (``build_identity_service`` wraps it in a listening
service); ``build_validator(conf, database, reactor)`` gives the
ITokenValidator every other HTTP API checks tokens with.
"""

from __future__ import annotations


def build_identity_resource(conf, database, reactor, authenticator=None):
    """Return the twisted.web Resource answering the identity API (``/`` and ``/v3/...``).

    ``authenticator`` (an :class:`nova_twisted.api.auth.Authenticator`
    shared with the other APIs of the process), when given, forgets a
    revoked token at once instead of at the end of its cache window.
    """
    from nova_twisted.identity.api import IdentityAPI
    from nova_twisted.identity.resource import IdentityResource

    api = IdentityAPI.from_config(conf, database, reactor)
    return IdentityResource(api, conf, authenticator=authenticator)


def build_identity_service(conf, database, reactor, authenticator=None):
    """Return a Twisted service serving the identity API on ``[identity] bind_host:bind_port``."""
    from twisted.application.internet import TCPServer
    from twisted.web.server import Site

    site = Site(build_identity_resource(conf, database, reactor, authenticator))
    service = TCPServer(conf.identity.bind_port, site, interface=conf.identity.bind_host, reactor=reactor)
    service.setName("identity-api")
    return service


def build_validator(conf, database, reactor):
    """Return the ITokenValidator chosen by ``[identity] token_validation`` (local or keystone)."""
    from nova_twisted.identity.validator import KeystoneTokenValidator, LocalTokenValidator

    if conf.identity.token_validation == "keystone":
        return KeystoneTokenValidator.from_config(conf, reactor)
    from nova_twisted.identity.api import IdentityAPI

    return LocalTokenValidator(IdentityAPI.from_config(conf, database, reactor))
