"""The request context: who asks, for which project, under which request id."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field


def generate_request_id() -> str:
    """Return a new request id in Nova's form, ``req-<uuid>``."""
    return f"req-{uuid.uuid4()}"


@dataclass
class RequestContext:
    """Travels with every request and every RPC message.

    ``auth_token`` travels on the bus (:meth:`to_wire`, as Nova does, so
    compute can reach the image service as the user) but never into logs or
    API bodies (:meth:`to_dict` leaves it out).
    """

    user_id: str | None = None
    project_id: str | None = None
    roles: list[str] = field(default_factory=list)
    request_id: str = field(default_factory=generate_request_id)
    is_admin: bool = False
    user_name: str | None = None
    project_name: str | None = None
    remote_address: str | None = None
    global_request_id: str | None = None
    read_deleted: str = "no"
    auth_token: str | None = field(default=None, repr=False)

    def __post_init__(self):
        if not self.is_admin and "admin" in self.roles:
            self.is_admin = True

    def to_dict(self) -> dict:
        """Return the context as plain data for the bus, without the token."""
        data = asdict(self)
        data.pop("auth_token", None)
        return data

    def to_wire(self) -> dict:
        """Return the context as it travels on the bus (with the token)."""
        data = asdict(self)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "RequestContext":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def elevated(self) -> "RequestContext":
        """Return a copy with admin rights, for internal work done on a user's behalf."""
        data = self.to_wire()
        data["is_admin"] = True
        if "admin" not in data["roles"]:
            data["roles"] = [*data["roles"], "admin"]
        return RequestContext.from_dict(data)


def get_admin_context(request_id: str | None = None) -> RequestContext:
    """Return a context for the services' own work (periodic tasks, start-up)."""
    ctxt = RequestContext(is_admin=True, roles=["admin"], read_deleted="no")
    if request_id:
        ctxt.request_id = request_id
    return ctxt
