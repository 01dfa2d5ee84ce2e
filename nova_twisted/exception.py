"""The one error hierarchy: every error of ours has an HTTP code and a safe message.

The RPC layer carries these across the bus by name (see
:func:`by_name`), and the APIs map them to their own formats; nothing else
invents status codes.
"""

from __future__ import annotations


class NovaError(Exception):
    """Base of all our errors.

    ``code`` is the HTTP status the APIs answer with; ``message`` is safe to
    show a user (no secrets, no tracebacks). Subclasses set ``msg_fmt`` and
    are raised with the keyword arguments it names.
    """

    code = 500
    msg_fmt = "An unknown error occurred."
    #: Errors that are safe to show; a 500's text is replaced in the APIs.
    safe = True

    def __init__(self, message: str | None = None, **kwargs):
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                message = self.msg_fmt
        self.message = str(message)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ConfigurationError(NovaError):
    msg_fmt = "Invalid configuration: %(reason)s"


class StartupError(NovaError):
    """A service cannot start; the message is the one line a user sees."""

    msg_fmt = "%(reason)s"


# -- 400 ---------------------------------------------------------------------
class Invalid(NovaError):
    code = 400
    msg_fmt = "Invalid input: %(reason)s"


class ValidationError(Invalid):
    msg_fmt = "Invalid input for field/attribute %(field)s. %(reason)s"


class InvalidRequest(Invalid):
    msg_fmt = "%(reason)s"


# -- 401/403 -----------------------------------------------------------------
class NotAuthenticated(NovaError):
    code = 401
    msg_fmt = "The request you have made requires authentication."


class Forbidden(NovaError):
    code = 403
    msg_fmt = "Policy doesn't allow %(action)s to be performed."


# -- 404 ---------------------------------------------------------------------
class NotFound(NovaError):
    code = 404
    msg_fmt = "Resource could not be found."


class InstanceNotFound(NotFound):
    msg_fmt = "Instance %(instance_id)s could not be found."


class FlavorNotFound(NotFound):
    msg_fmt = "Flavor %(flavor_id)s could not be found."


class ImageNotFound(NotFound):
    msg_fmt = "Image %(image_id)s could not be found."


class KeypairNotFound(NotFound):
    msg_fmt = "Keypair %(name)s not found for user %(user_id)s"


class ServiceNotFound(NotFound):
    msg_fmt = "Service %(service_id)s could not be found."


class ComputeHostNotFound(NotFound):
    msg_fmt = "Compute host %(host)s could not be found."


class InstanceGroupNotFound(NotFound):
    msg_fmt = "Instance group %(group_uuid)s could not be found."


class ProjectNotFound(NotFound):
    msg_fmt = "Project %(project)s could not be found."


class UserNotFound(NotFound):
    msg_fmt = "User %(user)s could not be found."


class RoleNotFound(NotFound):
    msg_fmt = "Role %(role)s could not be found."


class ActionNotFound(NotFound):
    msg_fmt = "Action for request_id %(request_id)s on instance %(instance_uuid)s not found"


class ConsoleTokenNotFound(NotFound):
    msg_fmt = "The console token is invalid or has expired."


# -- 409 ---------------------------------------------------------------------
class Conflict(NovaError):
    code = 409
    msg_fmt = "Conflict: %(reason)s"


class InstanceInvalidState(Conflict):
    msg_fmt = "Cannot '%(action)s' instance %(instance_uuid)s while it is in %(attr)s %(state)s"


class UnexpectedTaskState(Conflict):
    msg_fmt = "Conflict updating instance %(instance_uuid)s. Expected: %(expected)s. Actual: %(actual)s"


class InstanceIsLocked(Conflict):
    msg_fmt = "Instance %(instance_uuid)s is locked"


class Duplicate(Conflict):
    msg_fmt = "%(reason)s"


class KeyPairExists(Duplicate):
    msg_fmt = "Key pair '%(key_name)s' already exists."


class FlavorExists(Duplicate):
    msg_fmt = "Flavor with %(field)s %(value)s already exists."


class ClaimFailed(Conflict):
    """A resource claim lost a race or no longer fits; the scheduler tries the next host."""

    msg_fmt = "Claim on %(host)s failed: %(reason)s"


# -- 413/403 quota -----------------------------------------------------------
class QuotaError(NovaError):
    code = 403
    msg_fmt = "Quota exceeded: %(reason)s"


class QuotaExceeded(QuotaError):
    msg_fmt = (
        "Quota exceeded for %(resources)s: Requested %(req)s, but already used %(used)s of %(allowed)s %(resources)s"
    )


class OverLimit(QuotaError):
    code = 413


# -- scheduling / compute ---------------------------------------------------
class NoValidHost(NovaError):
    code = 500
    msg_fmt = "No valid host was found. %(reason)s"


class RescheduledException(NovaError):
    msg_fmt = "Build of instance %(instance_uuid)s was re-scheduled: %(reason)s"


class BuildAbortException(NovaError):
    msg_fmt = "Build of instance %(instance_uuid)s aborted: %(reason)s"


class HypervisorError(NovaError):
    msg_fmt = "Hypervisor error: %(reason)s"


class InstanceNotRunning(Conflict):
    msg_fmt = "Instance %(instance_uuid)s is not running."


class ConsoleTypeUnavailable(Invalid):
    msg_fmt = "Unavailable console type %(console_type)s."


# -- infrastructure ----------------------------------------------------------
class DBError(NovaError):
    msg_fmt = "Database error: %(reason)s"


class DBConnectionError(DBError):
    msg_fmt = "Cannot connect to the database at %(url)s: %(reason)s"


class DBDuplicateEntry(DBError):
    code = 409
    msg_fmt = "Duplicate entry: %(reason)s"


class MessagingError(NovaError):
    msg_fmt = "Messaging error: %(reason)s"


class MessagingTimeout(MessagingError):
    code = 504
    msg_fmt = "Timed out waiting for a reply to %(method)s on %(topic)s after %(timeout)ss"


class RemoteError(MessagingError):
    """An error raised on the far side of a call that is not one of ours."""

    msg_fmt = "Remote error: %(exc_type)s %(value)s"

    def __init__(self, exc_type: str = "", value: str = "", **kwargs):
        super().__init__(exc_type=exc_type, value=value, **kwargs)
        self.exc_type = exc_type
        self.value = value


class UnsupportedVersion(MessagingError):
    msg_fmt = "Endpoint does not support RPC version %(version)s. Attempted method: %(method)s"


class NoSuchMethod(MessagingError):
    msg_fmt = "Endpoint does not support RPC method %(method)s"


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def by_name(name: str) -> type[NovaError] | None:
    """Return our error class called ``name``, or None if it is not one of ours."""
    if name == NovaError.__name__:
        return NovaError
    for cls in _all_subclasses(NovaError):
        if cls.__name__ == name:
            return cls
    return None
