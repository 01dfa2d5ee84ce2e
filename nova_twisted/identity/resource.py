"""The identity HTTP API at :5000: the Keystone v3 subset OpenStack clients use.

Built on the shared :class:`~nova_twisted.api.http.JSONRouter`, answering
errors in Keystone's shape ``{"error": {"code", "message", "title"}}``
(with ``WWW-Authenticate`` on a 401). Policy, as Keystone's defaults for a
single-domain cloud: the ``admin`` role (on any project) manages users,
projects, roles and assignments; everyone sees themselves, their own
projects and roles, and manages their own EC2 credentials and tokens.
"""

from __future__ import annotations

import re

from twisted.logger import Logger
from twisted.web.resource import Resource

from nova_twisted import exception
from nova_twisted.api.http import JSONRouter, Response, query_params
from nova_twisted.api.http import base_url as http_base_url
from nova_twisted.context import RequestContext
from nova_twisted.db.identity import DEFAULT_DOMAIN_ID
from nova_twisted.identity import views
from nova_twisted.identity.api import unauthorized

log = Logger(namespace="nova.identity.api")

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_MALFORMED = (
    " The server could not comply with the request since it is either malformed or otherwise incorrect."
    " The client is assumed to be in error."
)
#: Roles that may validate and revoke anyone's token (besides admin).
SERVICE_ROLES = ("service",)


def keystone_error(exc: exception.NovaError) -> dict:
    """Return Keystone's error body for one of our errors (no internals for a 500)."""
    code = exc.code if isinstance(exc.code, int) else 500
    message = exc.message
    if isinstance(exc, exception.DBDuplicateEntry):
        message = "Conflict occurred attempting to store the resource: it already exists."
    elif code == 500:
        message = "An unexpected error prevented the server from fulfilling your request."
    return {"error": {"code": code, "message": message, "title": TITLES.get(code, "Error")}}


def bad_request(what: str, target: str) -> exception.InvalidRequest:
    return exception.InvalidRequest(f"Expecting to find {what} in {target}.{_MALFORMED}")


def forbidden(action: str) -> exception.Forbidden:
    return exception.Forbidden(f"You are not authorized to perform the requested action: identity:{action}.")


def base_url(req) -> str:
    """``scheme://host[:port]`` as the client addressed this server."""
    return http_base_url(req.raw)


def _object(body, key: str, target: str) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise bad_request(key, target)
    return body[key]


def _string(data: dict, key: str, target: str, required: bool = True, max_length: int = 255) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise bad_request(key, target)
        return None
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > max_length:
        raise exception.InvalidRequest(f"Invalid input for field '{key}': {value!r} is not a valid {key}.")
    return value


def _boolean(data: dict, key: str, default: bool | None = None) -> bool | None:
    value = data.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise exception.InvalidRequest(f"Invalid input for field '{key}': {value!r} is not of type 'boolean'.")
    return value


def _query_bool(req, name: str) -> bool | None:
    value = req.arg(name)
    if value is None:
        return None
    return value.lower() not in ("0", "false", "no", "off")


def _flag(req, name: str) -> bool:
    """True when the query string names ``name``, with or without a value (``?nocatalog``)."""
    if name in req.query:
        return True
    _, _, query = req.raw.uri.partition(b"?")
    return name in query_params(query)


def _check_domain(domain, target: str) -> None:
    """Accept only the one domain: by id ``default`` or name ``Default``."""
    if domain is None:
        return
    if not isinstance(domain, dict) or not (domain.get("id") or domain.get("name")):
        raise bad_request("domain", target)
    if domain.get("id") is not None and domain["id"] != DEFAULT_DOMAIN_ID:
        raise unauthorized()
    if domain.get("name") is not None and str(domain["name"]).lower() != DEFAULT_DOMAIN_ID:
        raise unauthorized()


class IdentityResource(Resource):
    """Serves ``/`` and ``/v3/...`` of the identity API; give it to a Site on :5000."""

    isLeaf = True

    def __init__(self, api, conf, authenticator=None):
        super().__init__()
        self.api = api
        self.catalog = views.build_catalog(conf.identity)
        self.authenticator = authenticator
        self.router = JSONRouter(error_body=keystone_error, authenticate=self._authenticate, after=self._after)
        self._add_routes()

    def render(self, request):
        # keystoneauth joins URLs from discovery links ending in '/': tolerate '//'.
        request.path = re.sub(rb"/{2,}", b"/", request.path)
        return self.router.render(request)

    def _add_routes(self) -> None:
        add = self.router.add
        add("GET", "/", self.versions, auth=False)
        add("GET", "/v3", self.version, auth=False)
        add("POST", "/v3/auth/tokens", self.issue_token, auth=False)
        add("GET", "/v3/auth/tokens", self.validate_token)
        add("DELETE", "/v3/auth/tokens", self.revoke_token)
        add("GET", "/v3/auth/catalog", self.auth_catalog)
        add("GET", "/v3/auth/projects", self.auth_projects)
        add("GET", "/v3/auth/domains", self.auth_domains)
        add("GET", "/v3/auth/system", self.auth_system)
        add("GET", "/v3/domains", self.list_domains)
        add("GET", "/v3/domains/{domain_id}", self.show_domain)
        add("GET", "/v3/projects", self.list_projects)
        add("POST", "/v3/projects", self.create_project)
        add("GET", "/v3/projects/{project_id}", self.show_project)
        add("PATCH", "/v3/projects/{project_id}", self.update_project)
        add("DELETE", "/v3/projects/{project_id}", self.delete_project)
        add("GET", "/v3/projects/{project_id}/users/{user_id}/roles", self.list_user_roles)
        add("GET", "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", self.check_role)
        add("PUT", "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", self.grant_role)
        add("DELETE", "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", self.revoke_role)
        add("GET", "/v3/users", self.list_users)
        add("POST", "/v3/users", self.create_user)
        add("GET", "/v3/users/{user_id}", self.show_user)
        add("PATCH", "/v3/users/{user_id}", self.update_user)
        add("DELETE", "/v3/users/{user_id}", self.delete_user)
        add("GET", "/v3/users/{user_id}/projects", self.list_user_projects)
        add("POST", "/v3/users/{user_id}/password", self.change_password)
        add("GET", "/v3/users/{user_id}/credentials/OS-EC2", self.list_ec2)
        add("POST", "/v3/users/{user_id}/credentials/OS-EC2", self.create_ec2)
        add("GET", "/v3/users/{user_id}/credentials/OS-EC2/{access}", self.show_ec2)
        add("DELETE", "/v3/users/{user_id}/credentials/OS-EC2/{access}", self.delete_ec2)
        add("GET", "/v3/roles", self.list_roles)
        add("POST", "/v3/roles", self.create_role)
        add("GET", "/v3/roles/{role_id}", self.show_role)
        add("DELETE", "/v3/roles/{role_id}", self.delete_role)
        add("GET", "/v3/role_assignments", self.list_role_assignments)
        add("GET", "/v3/services", self.list_services)
        add("GET", "/v3/services/{service_id}", self.show_service)
        add("GET", "/v3/endpoints", self.list_endpoints)
        add("GET", "/v3/endpoints/{endpoint_id}", self.show_endpoint)
        add("GET", "/v3/regions", self.list_regions)
        add("GET", "/v3/regions/{region_id}", self.show_region)

    # -- hooks ---------------------------------------------------------------------
    async def _authenticate(self, req) -> None:
        token = req.header("x-auth-token")
        context = await self.api.validate_token(token)
        req.extra["auth"] = context
        project = context["project"]
        req.context = RequestContext(
            user_id=context["user"]["id"],
            project_id=project["id"] if project else None,
            roles=[r["name"] for r in context["roles"]],
            user_name=context["user"]["name"],
            project_name=project["name"] if project else None,
            request_id=req.request_id,
            auth_token=token,
        )

    def _after(self, req, response: Response) -> None:
        if response.status == 401:
            response.headers["WWW-Authenticate"] = f'Keystone uri="{base_url(req)}"'

    # -- policy --------------------------------------------------------------------
    @staticmethod
    def _is_admin(req) -> bool:
        return "admin" in req.context.roles

    def _admin(self, req, action: str) -> None:
        if not self._is_admin(req):
            raise forbidden(action)

    def _self_or_admin(self, req, user_id: str, action: str) -> None:
        if req.context.user_id != user_id and not self._is_admin(req):
            raise forbidden(action)

    # -- versions ------------------------------------------------------------------
    async def versions(self, req):
        return Response(300, views.versions(base_url(req)))

    async def version(self, req):
        return {"version": views.version_v3(base_url(req))}

    # -- tokens --------------------------------------------------------------------
    async def issue_token(self, req):
        auth = _object(req.json(), "auth", "request body")
        identity = _object(auth, "identity", "auth")
        methods = identity.get("methods")
        if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
            raise bad_request("methods", "identity")
        unsupported = set(methods) - {"password", "token"}
        if unsupported:
            raise exception.NotAuthenticated("Attempted to authenticate with an unsupported method.")
        user = parent = None
        if "token" in methods:
            token_id = _string(_object(identity, "token", "identity"), "id", "token", max_length=1024)
            parent = await self.api.validate_token(token_id)
            user = parent["user"]
        if "password" in methods:
            spec = _object(_object(identity, "password", "identity"), "user", "password")
            password = spec.get("password")
            if not isinstance(password, str):
                raise bad_request("password", "user")
            if spec.get("id") is not None:
                found = await self.api.check_password(password, user_id=str(spec["id"]))
            else:
                name = _string(spec, "name", "user")
                if spec.get("domain") is None:
                    raise bad_request("domain", "user")
                _check_domain(spec["domain"], "user")
                found = await self.api.check_password(password, user_name=name)
            if user is not None and user["id"] != found["id"]:
                raise unauthorized()
            user = found
        project_id, project_name, unscoped = self._scope(auth.get("scope"))
        token, context = await self.api.issue_token(
            user,
            [m for m in ("password", "token") if m in methods],
            project_id=project_id,
            project_name=project_name,
            unscoped=unscoped,
            parent=parent,
        )
        catalog = None if _flag(req, "nocatalog") else self.catalog
        return Response(201, views.token(context, catalog), headers={"X-Subject-Token": token})

    @staticmethod
    def _scope(scope) -> tuple[str | None, str | None, bool]:
        """Return (project id, project name, explicitly unscoped) of a request's scope."""
        if scope is None:
            return None, None, False
        if scope == "unscoped":
            return None, None, True
        if not isinstance(scope, dict):
            raise bad_request("scope", "auth")
        if "project" not in scope:
            if set(scope) & {"domain", "system", "OS-TRUST:trust"}:
                raise exception.InvalidRequest(
                    "This cloud issues project-scoped and unscoped tokens only: scope the token to a project."
                )
            raise bad_request("project", "scope")
        project = _object(scope, "project", "scope")
        if project.get("id") is not None:
            return str(project["id"]), None, False
        name = _string(project, "name", "project")
        if project.get("domain") is None:
            raise bad_request("domain", "project")
        _check_domain(project["domain"], "project")
        return None, name, False

    async def _subject(self, req, action: str) -> dict:
        subject = req.header("x-subject-token")
        if not subject:
            raise bad_request("X-Subject-Token", "the request headers")
        try:
            context = await self.api.validate_token(subject)
        except exception.NotAuthenticated:
            raise exception.NotFound("Could not find token.") from None
        roles = req.context.roles
        if context["user"]["id"] != req.context.user_id and "admin" not in roles:
            if not set(roles) & set(SERVICE_ROLES):
                raise forbidden(action)
        return context

    async def validate_token(self, req):
        context = await self._subject(req, "validate_token")
        catalog = None if _flag(req, "nocatalog") else self.catalog
        return Response(200, views.token(context, catalog), headers={"X-Subject-Token": req.header("x-subject-token")})

    async def revoke_token(self, req):
        await self._subject(req, "revoke_token")
        subject = req.header("x-subject-token")
        await self.api.revoke_token(subject)
        if self.authenticator is not None:
            self.authenticator.forget(subject)
        return Response(204)

    async def auth_catalog(self, req):
        if req.context.project_id is None:
            raise exception.Forbidden("A project-scoped token is required to produce a service catalog.")
        return {"catalog": self.catalog, "links": views.links(base_url(req), "auth/catalog")}

    async def auth_projects(self, req):
        projects = await self.api.projects_for_user(req.context.user_id, enabled_only=True)
        base = base_url(req)
        return views.collection("projects", [views.project(p, base) for p in projects], base, "auth/projects")

    async def auth_domains(self, req):
        return views.collection("domains", [], base_url(req), "auth/domains")

    async def auth_system(self, req):
        return views.collection("system", [], base_url(req), "auth/system")

    # -- domains -------------------------------------------------------------------
    async def list_domains(self, req):
        base = base_url(req)
        name = req.arg("name")
        domains = [views.domain(base)]
        if name is not None and name.lower() != DEFAULT_DOMAIN_ID:
            domains = []
        if _query_bool(req, "enabled") is False:
            domains = []
        return views.collection("domains", domains, base, "domains")

    async def show_domain(self, req):
        if req.params["domain_id"] != DEFAULT_DOMAIN_ID:
            raise exception.NotFound(f"Could not find domain: {req.params['domain_id']}.")
        return {"domain": views.domain(base_url(req))}

    # -- projects ------------------------------------------------------------------
    async def list_projects(self, req):
        self._admin(req, "list_projects")
        base = base_url(req)
        domain_id = req.arg("domain_id")
        if domain_id is not None and domain_id != DEFAULT_DOMAIN_ID:
            return views.collection("projects", [], base, "projects")
        projects = await self.api.list_projects(req.arg("name"), _query_bool(req, "enabled"))
        return views.collection("projects", [views.project(p, base) for p in projects], base, "projects")

    async def show_project(self, req):
        project_id = req.params["project_id"]
        if not self._is_admin(req):
            roles = await self.api.roles_for(req.context.user_id, project_id)
            if not roles:
                raise forbidden("get_project")
        project = await self.api.get_project(project_id)
        return {"project": views.project(project, base_url(req))}

    async def create_project(self, req):
        self._admin(req, "create_project")
        spec = _object(req.json(), "project", "request body")
        name = _string(spec, "name", "project", max_length=64)
        description = _string(spec, "description", "project", required=False, max_length=65535) or ""
        enabled = _boolean(spec, "enabled", True)
        for key in ("domain_id", "parent_id"):
            if spec.get(key) not in (None, DEFAULT_DOMAIN_ID):
                raise exception.NotFound(f"Could not find domain: {spec[key]}.")
        if spec.get("is_domain"):
            raise exception.InvalidRequest("This cloud has one domain; projects cannot be domains.")
        project = await self.api.create_project(name, description, enabled)
        log.info("project {name} ({id}) created", name=name, id=project["id"], request_id=req.request_id)
        return Response(201, {"project": views.project(project, base_url(req))})

    async def update_project(self, req):
        self._admin(req, "update_project")
        spec = _object(req.json(), "project", "request body")
        values = {}
        if "name" in spec:
            values["name"] = _string(spec, "name", "project", max_length=64)
        if "description" in spec:
            values["description"] = _string(spec, "description", "project", required=False, max_length=65535) or ""
        if "enabled" in spec:
            values["enabled"] = _boolean(spec, "enabled")
        project = await self.api.update_project(req.params["project_id"], **values)
        return {"project": views.project(project, base_url(req))}

    async def delete_project(self, req):
        self._admin(req, "delete_project")
        await self.api.delete_project(req.params["project_id"])
        log.info("project {id} deleted", id=req.params["project_id"], request_id=req.request_id)
        return Response(204)

    # -- role assignments on projects ----------------------------------------------
    async def list_user_roles(self, req):
        self._self_or_admin(req, req.params["user_id"], "list_grants")
        await self.api.get_project(req.params["project_id"])
        await self.api.get_user(req.params["user_id"])
        roles = await self.api.roles_for(req.params["user_id"], req.params["project_id"])
        base = base_url(req)
        path = f"projects/{req.params['project_id']}/users/{req.params['user_id']}/roles"
        return views.collection("roles", [views.role(r, base) for r in roles], base, path)

    async def check_role(self, req):
        self._self_or_admin(req, req.params["user_id"], "check_grant")
        p = req.params
        if not await self.api.has_role_assignment(p["user_id"], p["project_id"], p["role_id"]):
            raise exception.RoleNotFound(
                f"Could not find role assignment with role: {p['role_id']}, user or group: {p['user_id']}, "
                f"project, domain, or system: {p['project_id']}.",
                role=p["role_id"],
            )
        return Response(204)

    async def grant_role(self, req):
        self._admin(req, "create_grant")
        p = req.params
        await self.api.add_role_assignment(p["user_id"], p["project_id"], p["role_id"])
        log.info(
            "role {role} granted to user {user} on project {project}",
            role=p["role_id"],
            user=p["user_id"],
            project=p["project_id"],
            request_id=req.request_id,
        )
        return Response(204)

    async def revoke_role(self, req):
        self._admin(req, "revoke_grant")
        p = req.params
        await self.api.remove_role_assignment(p["user_id"], p["project_id"], p["role_id"])
        return Response(204)

    async def list_role_assignments(self, req):
        user_id = req.arg("user.id")
        if not self._is_admin(req) and user_id != req.context.user_id:
            raise forbidden("list_role_assignments")
        base = base_url(req)
        if req.arg("group.id") is not None or req.arg("scope.domain.id") is not None or req.arg("scope.system"):
            rows = []  # no groups, domain or system assignments exist here
        else:
            rows = await self.api.list_role_assignments(user_id, req.arg("scope.project.id"), req.arg("role.id"))
        include_names = bool(_query_bool(req, "include_names"))
        items = [views.role_assignment(r, base, include_names) for r in rows]
        return views.collection("role_assignments", items, base, "role_assignments")

    # -- users ---------------------------------------------------------------------
    async def list_users(self, req):
        self._admin(req, "list_users")
        base = base_url(req)
        domain_id = req.arg("domain_id")
        if domain_id is not None and domain_id != DEFAULT_DOMAIN_ID:
            return views.collection("users", [], base, "users")
        users = await self.api.list_users(req.arg("name"), _query_bool(req, "enabled"))
        return views.collection("users", [views.user(u, base) for u in users], base, "users")

    async def show_user(self, req):
        self._self_or_admin(req, req.params["user_id"], "get_user")
        user = await self.api.get_user(req.params["user_id"])
        return {"user": views.user(user, base_url(req))}

    async def create_user(self, req):
        self._admin(req, "create_user")
        spec = _object(req.json(), "user", "request body")
        name = _string(spec, "name", "user")
        password = _string(spec, "password", "user", required=False, max_length=4096)
        email = _string(spec, "email", "user", required=False)
        default_project_id = _string(spec, "default_project_id", "user", required=False, max_length=64)
        enabled = _boolean(spec, "enabled", True)
        if spec.get("domain_id") not in (None, DEFAULT_DOMAIN_ID):
            raise exception.NotFound(f"Could not find domain: {spec['domain_id']}.")
        user = await self.api.create_user(name, password, email, default_project_id, enabled)
        log.info("user {name} ({id}) created", name=name, id=user["id"], request_id=req.request_id)
        return Response(201, {"user": views.user(user, base_url(req))})

    async def update_user(self, req):
        self._admin(req, "update_user")
        spec = _object(req.json(), "user", "request body")
        values: dict = {}
        if "name" in spec:
            values["name"] = _string(spec, "name", "user")
        if "email" in spec:
            values["email"] = _string(spec, "email", "user", required=False)
        if "enabled" in spec:
            values["enabled"] = _boolean(spec, "enabled")
        if "default_project_id" in spec:
            values["default_project_id"] = _string(spec, "default_project_id", "user", required=False, max_length=64)
        if "password" in spec:
            values["password"] = _string(spec, "password", "user", max_length=4096)
        user = await self.api.update_user(req.params["user_id"], **values)
        return {"user": views.user(user, base_url(req))}

    async def delete_user(self, req):
        self._admin(req, "delete_user")
        await self.api.delete_user(req.params["user_id"])
        log.info("user {id} deleted", id=req.params["user_id"], request_id=req.request_id)
        return Response(204)

    async def list_user_projects(self, req):
        user_id = req.params["user_id"]
        self._self_or_admin(req, user_id, "list_user_projects")
        await self.api.get_user(user_id)
        projects = await self.api.projects_for_user(user_id)
        base = base_url(req)
        items = [views.project(p, base) for p in projects]
        return views.collection("projects", items, base, f"users/{user_id}/projects")

    async def change_password(self, req):
        user_id = req.params["user_id"]
        if req.context.user_id != user_id:
            raise forbidden("change_password")
        spec = _object(req.json(), "user", "request body")
        original = _string(spec, "original_password", "user", max_length=4096)
        password = _string(spec, "password", "user", max_length=4096)
        await self.api.change_password(user_id, original, password)
        if self.authenticator is not None:
            self.authenticator.forget(req.context.auth_token)
        return Response(204)

    # -- EC2 credentials -----------------------------------------------------------
    async def list_ec2(self, req):
        user_id = req.params["user_id"]
        self._self_or_admin(req, user_id, "ec2_list_credentials")
        await self.api.get_user(user_id)
        rows = await self.api.list_ec2_credentials(user_id)
        base = base_url(req)
        items = [views.ec2_credential(r, base) for r in rows]
        return views.collection("credentials", items, base, f"users/{user_id}/credentials/OS-EC2")

    async def create_ec2(self, req):
        user_id = req.params["user_id"]
        self._self_or_admin(req, user_id, "ec2_create_credential")
        body = req.json()
        if not isinstance(body, dict):
            raise bad_request("tenant_id", "request body")
        project_id = _string(body, "tenant_id", "request body", max_length=64)
        await self.api.get_user(user_id)
        await self.api.get_project(project_id)
        if not self._is_admin(req) and not await self.api.roles_for(user_id, project_id):
            raise forbidden("ec2_create_credential")
        row = await self.api.create_ec2_credential(user_id, project_id)
        log.info(
            "EC2 credential {access} created for user {user} in project {project}",
            access=row["access"],
            user=user_id,
            project=project_id,
            request_id=req.request_id,
        )
        return Response(201, {"credential": views.ec2_credential(row, base_url(req))})

    async def show_ec2(self, req):
        user_id = req.params["user_id"]
        self._self_or_admin(req, user_id, "ec2_get_credential")
        row = await self.api.get_ec2_credential(user_id, req.params["access"])
        return {"credential": views.ec2_credential(row, base_url(req))}

    async def delete_ec2(self, req):
        user_id = req.params["user_id"]
        self._self_or_admin(req, user_id, "ec2_delete_credential")
        await self.api.delete_ec2_credential(user_id, req.params["access"])
        return Response(204)

    # -- roles ---------------------------------------------------------------------
    async def list_roles(self, req):
        self._admin(req, "list_roles")
        base = base_url(req)
        roles = await self.api.list_roles(req.arg("name"))
        return views.collection("roles", [views.role(r, base) for r in roles], base, "roles")

    async def show_role(self, req):
        self._admin(req, "get_role")
        role = await self.api.get_role(req.params["role_id"])
        return {"role": views.role(role, base_url(req))}

    async def create_role(self, req):
        self._admin(req, "create_role")
        spec = _object(req.json(), "role", "request body")
        role = await self.api.create_role(_string(spec, "name", "role"))
        return Response(201, {"role": views.role(role, base_url(req))})

    async def delete_role(self, req):
        self._admin(req, "delete_role")
        await self.api.delete_role(req.params["role_id"])
        return Response(204)

    # -- catalog administration (read-only: the catalog comes from nova.conf) ------
    def _services(self, base: str) -> list[dict]:
        return [
            {
                "id": s["id"],
                "type": s["type"],
                "name": s["name"],
                "enabled": True,
                "description": "",
                "links": views.links(base, f"services/{s['id']}"),
            }
            for s in self.catalog
        ]

    def _endpoints(self, base: str) -> list[dict]:
        return [
            {
                **endpoint,
                "service_id": service["id"],
                "enabled": True,
                "links": views.links(base, f"endpoints/{endpoint['id']}"),
            }
            for service in self.catalog
            for endpoint in service["endpoints"]
        ]

    def _regions(self, base: str) -> list[dict]:
        names = sorted({e["region_id"] for s in self.catalog for e in s["endpoints"]})
        return [
            {"id": r, "description": "", "parent_region_id": None, "links": views.links(base, f"regions/{r}")}
            for r in names
        ]

    async def list_services(self, req):
        self._admin(req, "list_services")
        base = base_url(req)
        items = [
            s
            for s in self._services(base)
            if req.arg("type") in (None, s["type"]) and req.arg("name") in (None, s["name"])
        ]
        return views.collection("services", items, base, "services")

    async def show_service(self, req):
        self._admin(req, "get_service")
        for service in self._services(base_url(req)):
            if service["id"] == req.params["service_id"]:
                return {"service": service}
        raise exception.NotFound(f"Could not find service: {req.params['service_id']}.")

    async def list_endpoints(self, req):
        self._admin(req, "list_endpoints")
        base = base_url(req)
        items = [
            e
            for e in self._endpoints(base)
            if req.arg("service_id") in (None, e["service_id"])
            and req.arg("interface") in (None, e["interface"])
            and req.arg("region_id") in (None, e["region_id"])
        ]
        return views.collection("endpoints", items, base, "endpoints")

    async def show_endpoint(self, req):
        self._admin(req, "get_endpoint")
        for endpoint in self._endpoints(base_url(req)):
            if endpoint["id"] == req.params["endpoint_id"]:
                return {"endpoint": endpoint}
        raise exception.NotFound(f"Could not find endpoint: {req.params['endpoint_id']}.")

    async def list_regions(self, req):
        base = base_url(req)
        return views.collection("regions", self._regions(base), base, "regions")

    async def show_region(self, req):
        for region in self._regions(base_url(req)):
            if region["id"] == req.params["region_id"]:
                return {"region": region}
        raise exception.NotFound(f"Could not find region: {req.params['region_id']}.")
