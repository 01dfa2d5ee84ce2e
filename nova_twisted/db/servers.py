"""What the compute API's servers views read: an instance with everything shown beside it, in one statement.

Each instance row carries its metadata, tags, latest fault, server
groups, its host's availability zone and compute-service state as
correlated subqueries (JSON-aggregated), so a server, or a page of them,
is one SELECT. :class:`Row` keeps the raw database values (hashable: the
API memoizes what it renders from them) and decodes them on demand into
the instance dicts of :mod:`nova_twisted.db.instances` plus ``tags``,
``fault``, ``server_groups``, ``host_az`` and ``service``.
:class:`ServerReader` serves GET /servers/{id}: the servers asked for in
one reactor turn share one trip to the database thread, and on SQLite a
server read since the last commit to the database (by any connection of
any process: :class:`DataVersion`) is answered without one.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import queue
import re
import sqlite3
import threading
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from nova_twisted import exception
from nova_twisted.db import engine as engines
from nova_twisted.db.instances import _after_marker, instance_name
from nova_twisted.db.models import (
    Flavor,
    Instance,
    InstanceAction,
    InstanceActionEvent,
    InstanceTag,
)

_TABLE = Instance.__table__
_COLUMNS = frozenset(c.key for c in _TABLE.columns)

#: Filters matched with a regular expression (in Python, the same on every database).
REGEX_FILTERS = ("display_name", "display_description", "hostname")
#: Filters matched exactly in SQL.
EXACT_FILTERS = (
    "project_id",
    "user_id",
    "host",
    "node",
    "reservation_id",
    "image_ref",
    "instance_type_id",
    "availability_zone",
    "key_name",
    "launch_index",
    "power_state",
    "locked_by",
)
LIST_FILTERS = ("uuid", "vm_state", "task_state")


def flavor_internal_id(session: Session, flavorid: str) -> int | None:
    """The row id of the flavor with API id ``flavorid`` (None if there is none)."""
    return session.execute(sa.select(Flavor.id).where(Flavor.flavorid == str(flavorid))).scalar()


def _tag_clauses(filters: dict) -> list:
    clauses = []

    def has(tag):
        return sa.exists().where(InstanceTag.instance_uuid == _TABLE.c.uuid, InstanceTag.tag == tag)

    def has_any(tags):
        return sa.exists().where(InstanceTag.instance_uuid == _TABLE.c.uuid, InstanceTag.tag.in_(tags))

    if filters.get("tags"):
        clauses.extend(has(t) for t in filters["tags"])
    if filters.get("tags-any"):
        clauses.append(has_any(filters["tags-any"]))
    if filters.get("not-tags"):
        clauses.append(sa.not_(sa.and_(*[has(t) for t in filters["not-tags"]])))
    if filters.get("not-tags-any"):
        clauses.append(sa.not_(has_any(filters["not-tags-any"])))
    return clauses


def list_rows(
    session: Session,
    filters: dict[str, Any],
    limit: int | None = None,
    marker: str | None = None,
    sort_keys: list[str] | None = None,
    sort_dirs: list[str] | None = None,
    extras: frozenset = frozenset(),
) -> list[Row]:
    """A page of instances matching ``filters``, sorted, after ``marker``, each with metadata and ``extras``.

    Filters (all optional): ``deleted`` (True/False; None: both), the
    exact-match columns of EXACT_FILTERS, lists for ``uuid``/``vm_state``/
    ``task_state`` (a None in task_state matches no task), ``changes_since``
    and ``changes_before`` (datetimes on updated_at), ``locked`` (bool),
    ``tags``/``tags-any``/``not-tags``/``not-tags-any`` (lists), and regular
    expressions for REGEX_FILTERS. Raises Invalid for a bad sort key and
    InvalidRequest for a marker that is not an instance.
    """
    dialect = "sqlite" if session.get_bind().dialect.name == "sqlite" else "mysql"
    extras = frozenset(extras)
    names = _row_names(extras)
    query = sa.select(_TABLE, *[sa.literal_column(sql).label(name) for name, sql in _extra_columns(dialect, extras)])
    deleted = filters.get("deleted")
    if deleted is True:
        query = query.where(_TABLE.c.deleted != 0)
    elif deleted is False:
        query = query.where(_TABLE.c.deleted == 0)
    for key in EXACT_FILTERS:
        value = filters.get(key)
        if value is not None:
            query = query.where(_TABLE.c[key] == value)
    for key in LIST_FILTERS:
        values = filters.get(key)
        if values is None:
            continue
        values = list(values)
        column = _TABLE.c[key]
        options = [column.in_([v for v in values if v is not None])] if any(v is not None for v in values) else []
        if None in values:
            options.append(column.is_(None))
        query = query.where(sa.or_(*options) if options else sa.false())
    if filters.get("changes_since") is not None:
        query = query.where(_TABLE.c.updated_at >= filters["changes_since"])
    if filters.get("changes_before") is not None:
        query = query.where(_TABLE.c.updated_at <= filters["changes_before"])
    if filters.get("locked") is not None:
        query = query.where(_TABLE.c.locked == (sa.true() if filters["locked"] else sa.false()))
    for clause in _tag_clauses(filters):
        query = query.where(clause)
    regexes = [(names.index(k), re.compile(filters[k])) for k in REGEX_FILTERS if filters.get(k) is not None]

    sort_keys = list(sort_keys or ["created_at"])
    sort_dirs = list(sort_dirs or [])
    sort_dirs += [sort_dirs[0] if sort_dirs else "desc"] * (len(sort_keys) - len(sort_dirs))
    for default in ("created_at", "id"):
        if default not in sort_keys:
            sort_keys.append(default)
            sort_dirs.append(sort_dirs[0])
    columns = []
    for key, direction in zip(sort_keys, sort_dirs, strict=True):
        if key not in _COLUMNS:
            raise exception.Invalid(reason=f"Invalid sort key {key}")
        if direction not in ("asc", "desc"):
            raise exception.InvalidRequest(reason="Unknown sort direction, must be 'desc' or 'asc'")
        columns.append((getattr(Instance, key), direction))
    if marker is not None:
        marker_row = session.execute(sa.select(_TABLE).where(_TABLE.c.uuid == marker)).first()
        if marker_row is None:
            raise exception.InvalidRequest(reason=f"marker [{marker}] not found")
        query = query.where(_after_marker(columns, marker_row))
    query = query.order_by(*[c.desc() if d == "desc" else c.asc() for c, d in columns])
    if limit == 0:
        return []
    if not regexes and limit is not None:
        query = query.limit(limit)
    found = []
    for row in session.execute(query):
        raw = tuple(row)
        if regexes and not all(pattern.search(raw[index] or "") for index, pattern in regexes):
            continue
        found.append(Row(raw, names, extras))
        if limit is not None and len(found) >= limit:
            break
    return found


def list_servers(session: Session, filters: dict[str, Any], *args, **kwargs) -> list[dict]:
    """:func:`list_rows`, decoded into instance dicts."""
    return [row.decoded() for row in list_rows(session, filters, *args, **kwargs)]


def get(
    session: Session, uuid: str, project_id: str | None = None, read_deleted: str = "no", extras=frozenset()
) -> dict:
    """The instance ``uuid`` with its metadata and ``extras``; InstanceNotFound if it is not visible.

    ``project_id`` (for non-admins) hides other projects' instances;
    ``read_deleted`` is "no", "yes" or "only".
    """
    rows = list_rows(session, {"uuid": [uuid], "deleted": None}, None, None, None, None, frozenset(extras))
    if not rows or not rows[0].visible(project_id, read_deleted):
        raise exception.InstanceNotFound(instance_id=uuid)
    return rows[0].decoded()


def add_tags(session: Session, uuid: str, tags: list[str]) -> None:
    """Give the instance ``tags`` (duplicates ignored)."""
    for tag in dict.fromkeys(tags):
        session.add(InstanceTag(instance_uuid=uuid, tag=tag))
    session.flush()


def set_system_metadata(session: Session, uuid: str, values: dict[str, Any], now: dt.datetime) -> None:
    """Merge ``values`` into the instance's system metadata (a None value removes the key)."""
    current = session.execute(sa.select(Instance.system_metadata).where(Instance.uuid == uuid)).scalar()
    if current is None:
        raise exception.InstanceNotFound(instance_id=uuid)
    data = json.loads(current or "{}")
    for key, value in values.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    session.execute(
        sa.update(Instance)
        .where(Instance.uuid == uuid)
        .values(system_metadata=json.dumps(data, separators=(",", ":")), updated_at=now)
    )


def list_actions(
    session: Session,
    uuid: str,
    limit: int | None = None,
    marker: str | None = None,
    changes_since: dt.datetime | None = None,
    changes_before: dt.datetime | None = None,
) -> list[dict]:
    """The instance's actions, newest first; ``marker`` is a request id (InvalidRequest if unknown)."""
    table = InstanceAction.__table__
    query = sa.select(table).where(table.c.instance_uuid == uuid)
    if changes_since is not None:
        query = query.where(table.c.updated_at >= changes_since)
    if changes_before is not None:
        query = query.where(table.c.updated_at <= changes_before)
    if marker is not None:
        marker_row = session.execute(
            sa.select(table.c.id, table.c.start_time)
            .where(table.c.instance_uuid == uuid, table.c.request_id == marker)
            .order_by(table.c.id.desc())
        ).first()
        if marker_row is None:
            raise exception.InvalidRequest(reason=f"Marker {marker} could not be found.")
        query = query.where(
            sa.or_(
                table.c.start_time < marker_row.start_time,
                sa.and_(table.c.start_time == marker_row.start_time, table.c.id < marker_row.id),
            )
        )
    query = query.order_by(table.c.start_time.desc(), table.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [dict(r._mapping) for r in session.execute(query)]


def get_action(session: Session, uuid: str, request_id: str) -> dict | None:
    """The instance's action of ``request_id`` with its events (newest first), or None."""
    table = InstanceAction.__table__
    row = session.execute(
        sa.select(table)
        .where(table.c.instance_uuid == uuid, table.c.request_id == request_id)
        .order_by(table.c.id.desc())
    ).first()
    if row is None:
        return None
    action = dict(row._mapping)
    events = InstanceActionEvent.__table__
    action["events"] = [
        dict(e._mapping)
        for e in session.execute(
            sa.select(events)
            .where(events.c.action_id == action["id"])
            .order_by(events.c.start_time.desc(), events.c.id.desc())
        )
    ]
    return action


# -- the fast read path of GET /servers/{id} ---------------------------------------------------
#: Correlated subqueries that bring an instance's extras along in its own row, per SQL dialect.
_EXTRA_SQL = {
    "sqlite": {
        "metadata": '(SELECT json_group_object(m."key", m.value) FROM instance_metadata m '
        "WHERE m.instance_uuid = instances.uuid)",
        "tags": "(SELECT json_group_array(t.tag) FROM instance_tags t WHERE t.instance_uuid = instances.uuid)",
        "fault": "(CASE WHEN instances.vm_state IN ('error', 'deleted') OR instances.deleted != 0 THEN "
        "(SELECT json_object('code', f.code, 'message', f.message, 'details', f.details, 'created_at', "
        "f.created_at) FROM instance_faults f WHERE f.instance_uuid = instances.uuid "
        "ORDER BY f.created_at DESC, f.id DESC LIMIT 1) END)",
        "server_groups": "(SELECT json_group_array(g.uuid) FROM server_group_members sm JOIN server_groups g "
        "ON g.id = sm.group_id WHERE sm.instance_uuid = instances.uuid)",
        "host_az": "(SELECT cn.availability_zone FROM compute_nodes cn WHERE cn.host = instances.host "
        "AND cn.deleted = 0 ORDER BY cn.id LIMIT 1)",
        "service": "(SELECT json_object('disabled', s.disabled, 'forced_down', s.forced_down, 'last_seen_up', "
        "s.last_seen_up, 'updated_at', s.updated_at) FROM services s WHERE s.host = instances.host "
        "AND s.\"binary\" = 'nova-compute' ORDER BY s.id LIMIT 1)",
    },
    "mysql": {
        "metadata": "(SELECT JSON_OBJECTAGG(m.`key`, m.value) FROM instance_metadata m "
        "WHERE m.instance_uuid = instances.uuid)",
        "tags": "(SELECT JSON_ARRAYAGG(t.tag) FROM instance_tags t WHERE t.instance_uuid = instances.uuid)",
        "fault": "(CASE WHEN instances.vm_state IN ('error', 'deleted') OR instances.deleted != 0 THEN "
        "(SELECT JSON_OBJECT('code', f.code, 'message', f.message, 'details', f.details, 'created_at', "
        "f.created_at) FROM instance_faults f WHERE f.instance_uuid = instances.uuid "
        "ORDER BY f.created_at DESC, f.id DESC LIMIT 1) END)",
        "server_groups": "(SELECT JSON_ARRAYAGG(g.uuid) FROM server_group_members sm JOIN server_groups g "
        "ON g.id = sm.group_id WHERE sm.instance_uuid = instances.uuid)",
        "host_az": "(SELECT cn.availability_zone FROM compute_nodes cn WHERE cn.host = instances.host "
        "AND cn.deleted = 0 ORDER BY cn.id LIMIT 1)",
        "service": "(SELECT JSON_OBJECT('disabled', s.disabled, 'forced_down', s.forced_down, 'last_seen_up', "
        "s.last_seen_up, 'updated_at', s.updated_at) FROM services s WHERE s.host = instances.host "
        "AND s.`binary` = 'nova-compute' ORDER BY s.id LIMIT 1)",
    },
}
_EXTRA_ORDER = ("tags", "fault", "server_groups", "host_az", "service")
_COLUMN_NAMES = [c.key for c in _TABLE.columns]
#: The instances columns in the order a Row's raw values start with.
COLUMN_NAMES = tuple(_COLUMN_NAMES)
_UUID = _COLUMN_NAMES.index("uuid")
_PROJECT = _COLUMN_NAMES.index("project_id")
_DELETED = _COLUMN_NAMES.index("deleted")
_TIME_COLUMNS = tuple(c.key for c in _TABLE.columns if isinstance(c.type, sa.DateTime))


def _dialect(database) -> str:
    return "sqlite" if database.engine.dialect.name == "sqlite" else "mysql"


def _as_time(value):
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value)


def _extra_columns(dialect: str, extras: frozenset) -> list[tuple[str, str]]:
    snippets = _EXTRA_SQL[dialect]
    return [("_metadata", snippets["metadata"])] + [
        (f"_{extra}", snippets[extra]) for extra in _EXTRA_ORDER if extra in extras
    ]


@functools.lru_cache(maxsize=64)
def _row_names(extras: frozenset) -> list[str]:
    return _COLUMN_NAMES + ["_metadata"] + [f"_{extra}" for extra in _EXTRA_ORDER if extra in extras]


class Row:
    """One instance as the database gave it (``raw``: a hashable tuple), decoded on demand."""

    __slots__ = ("raw", "names", "extras", "_decoded")

    def __init__(self, raw: tuple, names: list[str], extras: frozenset):
        self.raw = raw
        self.names = names
        self.extras = extras
        self._decoded = None

    @property
    def uuid(self) -> str:
        return self.raw[_UUID]

    def visible(self, project_id: str | None, read_deleted: str) -> bool:
        """Whether a caller limited to ``project_id`` (None: any) sees it, reading deleted ones as asked."""
        if project_id is not None and self.raw[_PROJECT] != project_id:
            return False
        if read_deleted == "yes":
            return True
        return (self.raw[_DELETED] == 0) == (read_deleted == "no")

    def service(self) -> dict | None:
        """The host's compute service state (for host_status), without decoding the rest."""
        if self._decoded is not None:
            return self._decoded.get("service")
        text = self.raw[self.names.index("_service")]
        if not text:
            return None
        service = json.loads(text)
        service["last_seen_up"] = _as_time(service["last_seen_up"])
        service["updated_at"] = _as_time(service["updated_at"])
        return service

    def decoded(self) -> dict:
        """The instance dict (a fresh copy each call)."""
        if self._decoded is None:
            self._decoded = _decode_joined(self.names, self.raw, self.extras)
        return dict(self._decoded)


def _decode_joined(names: list[str], row: tuple, extras: frozenset) -> dict:
    data = dict(zip(names, row, strict=True))
    for key in _TIME_COLUMNS:
        value = data[key]
        if value is not None and not isinstance(value, dt.datetime):
            data[key] = dt.datetime.fromisoformat(value)
    flavor = data["flavor"]
    data["flavor"] = json.loads(flavor) if flavor else {}
    sysmeta = data["system_metadata"]
    data["system_metadata"] = json.loads(sysmeta) if sysmeta else {}
    for key in ("old_flavor", "new_flavor"):
        value = data[key]
        data[key] = json.loads(value) if value else None
    data["name"] = instance_name(data["id"])
    metadata = data.pop("_metadata")
    data["metadata"] = json.loads(metadata) if metadata else {}
    if "tags" in extras:
        tags = data.pop("_tags")
        data["tags"] = sorted(json.loads(tags)) if tags else []
    if "fault" in extras:
        fault = data.pop("_fault")
        if fault:
            fault = json.loads(fault)
            fault["created_at"] = _as_time(fault["created_at"])
        data["fault"] = fault or None
    if "server_groups" in extras:
        groups = data.pop("_server_groups")
        data["server_groups"] = json.loads(groups) if groups else []
    if "host_az" in extras:
        data["host_az"] = data.pop("_host_az")
    if "service" in extras:
        service = data.pop("_service")
        if service:
            service = json.loads(service)
            service["last_seen_up"] = _as_time(service["last_seen_up"])
            service["updated_at"] = _as_time(service["updated_at"])
        data["service"] = service or None
    return data


@functools.lru_cache(maxsize=64)
def _joined_sql(dialect: str, extras: frozenset, count: int) -> str:
    quote = '"' if dialect == "sqlite" else "`"
    columns = [f"instances.{quote}{name}{quote}" for name in _COLUMN_NAMES]
    columns += [sql for _name, sql in _extra_columns(dialect, extras)]
    marks = ", ".join(["?" if dialect == "sqlite" else "%s"] * count)
    return f"SELECT {', '.join(columns)} FROM instances WHERE instances.uuid IN ({marks})"


class DataVersion:
    """Whether anything was committed to an SQLite database file since a given moment.

    SQLite's ``PRAGMA data_version`` on a connection of its own, which never
    writes, changes whenever any other connection (of this process or any
    other) has committed to the file since the last time it was asked. In
    WAL mode (every file database here) the question is answered from the
    WAL index in shared memory, a few microseconds, and never waits: the
    connection has no busy timeout, and a busy or failing database answers
    None ("unknown"). The connection is opened by the reader's thread (the
    first open may have to recover a WAL) and asked on the reactor.
    """

    def __init__(self, path: str):
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._cursor: sqlite3.Cursor | None = None

    @property
    def opened(self) -> bool:
        return self._cursor is not None

    @classmethod
    def of(cls, database) -> DataVersion | None:
        """One for ``database`` if it is an SQLite file, else None (MySQL, in-memory SQLite)."""
        url = make_url(str(database.url))
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        if url.query.get("mode") == "memory":
            return None
        return cls(url.database)

    def open(self) -> None:
        """Connect (in a thread: may wait for the file's locks)."""
        try:
            connection = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return  # stays closed: every read goes to the database
        try:
            cursor = connection.cursor()
            cursor.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            connection.close()
            return
        self._connection, self._cursor = connection, cursor

    def close(self) -> None:
        connection, self._connection, self._cursor = self._connection, None, None
        if connection is not None:
            connection.close()

    def current(self) -> int | None:
        """The data version now (larger after any commit by another connection), None if unknown."""
        cursor = self._cursor
        if cursor is None:
            return None
        try:
            return cursor.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return None


class ServerReader:
    """Reads servers for GET /servers/{id}: every server asked for in one reactor turn in one statement.

    ``get()`` returns the :class:`Row` itself when it is known current, else
    a Deferred. Requests arriving together (several connections in one poll)
    share one SELECT (the joined statement, on the DB-API connection
    itself), run by the reader's own thread: a plain queue hand-off, several
    times cheaper than a trip through a Twisted thread pool, which is most
    of the cost of a server read. The thread has its own connection (its own
    engine; the database's own for an in-memory SQLite) and ends, closing
    it, after IDLE_SECONDS without work; the next read starts it again.
    Same rows as :func:`list_rows`, errors included.

    On an SQLite file the rows read are kept, each with the database's
    :class:`DataVersion` taken before the SELECT ran; while the version has
    not moved (nothing was committed since, by anyone), the kept row is
    what the SELECT would give, and is answered at once. Any commit moves
    the version and empties the cache. MySQL has no such cheap and exact
    test: there every server is read.
    """

    IDLE_SECONDS = 5.0
    CACHE_MAX = 10000

    def __init__(self, database, reactor):
        self.database = database
        self.reactor = reactor
        self.dialect = _dialect(database)
        self._pending: list = []
        self._flush_call = None
        self._reading = False  # a batch is with the thread: the next waits for it, growing meanwhile
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._watch = DataVersion.of(database)
        self._cache: dict[tuple[str, frozenset], Row] = {}
        self._cache_version: int | None = None

    def get(self, uuid: str, project_id: str | None, read_deleted: str, extras: frozenset):
        """The :class:`Row` of ``uuid``, or a Deferred firing with it; InstanceNotFound if the caller may not see it."""
        if self._watch is not None:
            version = self._watch.current()
            if version is not None and version == self._cache_version:
                row = self._cache.get((uuid, extras))
                if row is not None:
                    if row.visible(project_id, read_deleted):
                        return row
                    raise exception.InstanceNotFound(instance_id=uuid)
            elif self._cache:
                self._cache.clear()
        from twisted.internet import defer

        waiting = defer.Deferred()
        self._pending.append((uuid, project_id, read_deleted, extras, waiting))
        if self._flush_call is None and not self._reading:
            self._flush_call = self.reactor.callLater(0, self._flush)
        return waiting

    def _flush(self) -> None:
        self._flush_call = None
        if self._reading or not self._pending:
            return
        self._reading = True
        batch, self._pending = self._pending, []
        wanted = frozenset().union(*(item[3] for item in batch))
        uuids = sorted({item[0] for item in batch})
        # Taken before the SELECT can start: a row read now is current for as long as this holds.
        # (Versions of different watches are not comparable: the watch goes along.)
        version = (self._watch, self._watch.current()) if self._watch is not None else None
        self._queue.put((uuids, wanted, batch, version))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="nova-server-reader", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        url = str(self.database.url)
        in_memory = url == "sqlite://" or ":memory:" in url  # another engine would see another database
        engine = self.database.engine if in_memory else None
        own = engine is None
        if own:
            try:
                engine = engines.create(url, pool_size=1)
            except Exception as exc:  # noqa: BLE001 - the queued reads fail, typed; the next read tries again
                self._give_up(exception.DBError(reason=str(exc) or type(exc).__name__))
                return
        if self._watch is not None and not self._watch.opened:
            # Opened here, once (the first open may recover a WAL), asked on the reactor from then on.
            watch = DataVersion(self._watch.path)
            watch.open()
            self.reactor.callFromThread(self._watch_opened, watch)
        try:
            while True:
                try:
                    uuids, extras, batch, version = self._queue.get(timeout=self.IDLE_SECONDS)
                except queue.Empty:
                    with self._lock:
                        if self._queue.empty():
                            self._thread = None
                            return
                    continue
                try:
                    found = self._read(engine, uuids, extras)
                except Exception as exc:  # noqa: BLE001 - handed to the waiting requests, typed
                    error = exc if isinstance(exc, exception.NovaError) else exception.DBError(reason=str(exc))
                    self.reactor.callFromThread(self._fail, error, batch)
                else:
                    self.reactor.callFromThread(self._deliver, found, batch, version, extras)
        finally:
            if own:
                engine.dispose()

    def _give_up(self, error) -> None:
        """This run of the thread cannot read: fail what is queued (never leave a request waiting)."""
        with self._lock:
            self._thread = None
            batches = []
            while not self._queue.empty():
                batches.append(self._queue.get_nowait()[2])
        for batch in batches:
            self.reactor.callFromThread(self._fail, error, batch)

    def _watch_opened(self, watch: DataVersion) -> None:
        if self._watch.opened:  # another run of the thread was first
            watch.close()
            return
        self._watch = watch
        self._cache.clear()
        self._cache_version = None

    def _remember(self, found: dict, taken: tuple | None, extras: frozenset) -> None:
        if taken is None:
            return
        watch, version = taken
        if version is None or watch is not self._watch:
            return
        if self._cache_version is None or version > self._cache_version:
            self._cache.clear()
            self._cache_version = version
        elif version < self._cache_version:
            return  # read before a commit already seen: may be older than the database
        if len(self._cache) + len(found) > self.CACHE_MAX:
            self._cache.clear()
        for uuid, row in found.items():
            self._cache[(uuid, extras)] = row

    def _read(self, engine, uuids: list[str], extras: frozenset) -> dict[str, Row]:
        sql = _joined_sql(self.dialect, extras, len(uuids))
        names = _row_names(extras)
        attempt = 0
        while True:
            connection = engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute(sql, uuids)
                rows = cursor.fetchall()
                cursor.close()
                connection.rollback()
                break
            except Exception as exc:  # noqa: BLE001 - DB-API errors of any driver: retried once, then typed
                connection.invalidate()
                if attempt == 0:
                    attempt += 1
                    continue
                raise exception.DBError(reason=str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
            finally:
                connection.close()
        return {row[_UUID]: Row(tuple(row), names, extras) for row in rows}

    def _deliver(self, found: dict, batch, version: tuple | None = None, extras: frozenset = frozenset()) -> None:
        self._read_done()
        self._remember(found, version, extras)
        for uuid, project_id, read_deleted, _extras, waiting in batch:
            row = found.get(uuid)
            if row is not None and row.visible(project_id, read_deleted):
                waiting.callback(row)
            else:
                waiting.errback(exception.InstanceNotFound(instance_id=uuid))

    def _fail(self, error, batch) -> None:
        self._read_done()
        for *_ignored, waiting in batch:
            waiting.errback(error)

    def _read_done(self) -> None:
        # What arrived while the thread read is one batch now: under load, one SELECT serves many requests.
        self._reading = False
        if self._pending and self._flush_call is None:
            self._flush_call = self.reactor.callLater(0, self._flush)


_READERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def reader(database, reactor) -> ServerReader:
    """The process's ServerReader of ``database``."""
    found = _READERS.get(database)
    if found is None:
        found = _READERS[database] = ServerReader(database, reactor)
    return found
