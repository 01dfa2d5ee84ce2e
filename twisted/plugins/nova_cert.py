"""twistd plugin: nova-cert: root CA and x509 certificates for projects."""

from nova_twisted.cmd.plugin import NovaServiceMaker

serviceMaker = NovaServiceMaker(
    "nova-cert",
    "nova-cert: root CA and x509 certificates for projects.",
    None,
    missing="the certificate service",
)
