"""Logging: one line per event, with service, host and request id, and never a secret."""

import io

from twisted.logger import Logger, LogLevel, LogPublisher

from nova_twisted.context import RequestContext
from nova_twisted.log import make_observer

SECRETS = ["hunter2-db-pass", "gAAAAtoken-abc123", "AKIASECRETKEY99", "rabbit-pw-42", "adm1nPa55"]


def capture(debug=False):
    stream = io.StringIO()
    publisher = LogPublisher()
    publisher.addObserver(make_observer("nova-api", "host-1", debug=debug, stream=stream))
    return Logger(namespace="nova.test", observer=publisher), stream


def test_each_event_is_one_line_with_service_host_and_request_id():
    log, stream = capture()
    ctxt = RequestContext(user_id="u", project_id="p")
    log.info("booting {name}\nsecond line", name="vm1", ctxt=ctxt)
    log.info("no request here")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert " INFO nova-api host-1 " + ctxt.request_id + " nova.test: booting vm1 | second line" in lines[0]
    assert " INFO nova-api host-1 - nova.test: no request here" in lines[1]


def test_debug_events_only_with_debug():
    log, stream = capture(debug=False)
    log.debug("hidden detail")
    assert stream.getvalue() == ""
    log, stream = capture(debug=True)
    log.debug("shown detail")
    assert "DEBUG" in stream.getvalue() and "shown detail" in stream.getvalue()


def test_secrets_are_never_logged():
    log, stream = capture(debug=True)
    log.info("connecting to {url}", url="mysql+pymysql://nova:hunter2-db-pass@db/nova")
    log.info("auth request {body}", body={"auth": {"identity": {"password": {"user": {"password": "adm1nPa55"}}}}})
    log.info("headers {h}", h={"X-Auth-Token": "gAAAAtoken-abc123"})
    log.info("token={token} secret: {secret}", token="gAAAAtoken-abc123", secret="AKIASECRETKEY99")
    log.info("broker amqp://guest:rabbit-pw-42@127.0.0.1:5672/ password=adm1nPa55")
    log.info(
        "the key {private_key}", private_key="-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE KEY-----"
    )
    log.info("{msg}", msg="-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----")
    ctxt = RequestContext(user_id="u", auth_token="gAAAAtoken-abc123")
    log.info("context {ctxt}", ctxt=ctxt)
    output = stream.getvalue()
    for secret in SECRETS + ["MIIabc", "MIIEv"]:
        assert secret not in output, f"{secret} leaked into: {output}"
    assert output.count("\n") == 8


def test_failures_are_summarised_on_the_same_line():
    log, stream = capture()
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        log.failure("it broke", level=LogLevel.error)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "ERROR" in lines[0] and "ZeroDivisionError" in lines[0]
