"""Hostile input against every route of the app, through real HTTP: never a 5xx, every 4xx is problem+json,
no traceback text anywhere.

The routes are enumerated from `app.routes`, so a new route is fuzzed without touching this file. Each example
is one request as admin, a coordinator, a clinic user or with broken credentials; the path ids, query
parameters, headers and body (JSON, form or multipart upload) are drawn from valid values, valid values with one
field made hostile, and outright garbage. Bounded and derandomized, so CI is fast and reproducible; it runs on
both backends (PostgreSQL finds what SQLite accepts: NUL characters, out-of-range values).
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import logging
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from starlette.routing import BaseRoute

from api.app import create_app
from api.core.security import ALGORITHM, create_token
from api.core.settings import Settings
from models.base import utcnow
from tests.service.conftest import FIXTURES, PASSWORD, Service

MAX_EXAMPLES = 20
SMALL = json.loads((FIXTURES / "pin_and_forbid.json").read_text())
KINDS = ("units", "supervisors", "offers", "candidates", "programmes")
VALID_OBJECTS = {kind: SMALL[kind] for kind in KINDS}
USERS = ("admin", "coord01", "clinic_u1")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")


def _route_contexts(routes: list[BaseRoute]) -> dict[tuple[str, str], Any]:
    """(method, full path) -> route, for every route of the app including those of included routers (HEAD is
    implied by GET)."""
    return {
        (method, context.path): context.route
        for context in iter_route_contexts(routes)
        for method in context.methods or ()
        if method != "HEAD"
    }


def _route_table(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    return sorted(_route_contexts(routes), key=lambda mp: (mp[1], mp[0]))


# Collected from a throwaway app (no database is touched) so that every route is its own test case.
ROUTES = _route_table(create_app(Settings(environment="test", database_url="sqlite://")).routes)


# ---------------------------------------------------------------------------------------------------- values

SPECIAL_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "null",
    "None",
    "true",
    "0",
    "-1",
    "1e309",
    "NaN",
    "' OR '1'='1",
    "01; DROP TABLE region; --",
    "../../etc/passwd",
    "%00",
    "%2F",
    '=HYPERLINK("http://x")',
    "+1",
    "@SUM(A1)",
    "\t\r\n",
    "ÅÄÖ åäö",
    "😀" * 3,
    "\u202e\u200b",
    "a" * 65,
    "x" * 201,
    "y" * 5000,
    "{{7*7}}",
    "<script>alert(1)</script>",
]
HUGE_INTS = [2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1, -1, 0]

text = st.text(max_size=40)
hostile_text = st.one_of(text, st.sampled_from(SPECIAL_STRINGS))
hostile_int = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from(HUGE_INTS))
scalar = st.one_of(
    st.none(),
    st.booleans(),
    hostile_int,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, 0.5, -0.0]),
    hostile_text,
)
FIELD_NAMES = sorted(
    {k for objs in VALID_OBJECTS.values() for o in objs for k in o}
    | {"id", "identity", "personnummer", "pins", "forbids", "unpin", "weights", "round_date", "time_limit_s"}
    | {"seed", "objective", "username", "password", "role", "region", "unit", "active", "code", "name"}
)
json_value = st.recursive(
    scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), text), children, max_size=4),
    ),
    max_leaves=12,
)


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


RAW_BODIES = [
    (b"", "application/json"),
    (b"{", "application/json"),
    (b"null", "application/json"),
    (b"[]", "application/json"),
    (b'"text"', "application/json"),
    (b"NaN", "application/json"),
    (b'{"a": Infinity}', "application/json"),
    (b"\xff\xfe\x00garbage", "application/json"),
    (_deep(100_000), "application/json"),
    (b'{"id": ' + _deep(5_000) + b"}", "application/json"),
    (b'{"a": "' + b"x" * 1_000_000 + b'"}', "application/json"),
    (b'{"id": "U1"}', "text/plain"),
    (b'{"id": "U1"}', "application/xml"),
    (b"id=U1&name=x", "application/x-www-form-urlencoded"),
    (b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc', "multipart/form-data; boundary=xyz"),
    (b"garbage", "multipart/form-data"),
    (b"garbage", "multipart/form-data; boundary="),
]


# ---------------------------------------------------------------------------------------------------- files


def _xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _not_xlsx_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    return out.getvalue()


def _csv_bytes(rows: list[list[str]], delimiter: str = ",") -> bytes:
    return "\n".join(delimiter.join(cells) for cells in rows).encode("utf-8", "surrogatepass")


FILE_CONTENTS = [
    b"",
    b"id\n",
    b"\n\n\n",
    b"\xef\xbb\xbf",
    b"PK\x03\x04garbage",
    b"\x00" * 100,
    "id;name\nU9;\u00e5\n".encode("latin-1"),
    _not_xlsx_zip(),
    _xlsx([]),
    _xlsx([["id", "name"], ["=1+2", '=HYPERLINK("http://x")'], ["U-F", "x" * 40_000]]),
    _xlsx([["id", "unit_id", "profession"], [1, 2.5, True], [None, None, None], ["S-X", "U1", "=A1"]]),
    _xlsx([[None, None], ["x", "y"]]),
    _csv_bytes([["ladder", "ladder.ptj_decision", "id"], ["x", "2027-01-01", "CAND-Z"]]),
    _csv_bytes([["ladder.ptj_decision", "ladder", "id"], ["2027-01-01", "x", "CAND-Z"]]),
    _csv_bytes([["id", "earmarks", "unit_caps"], ["P-Z", "[" * 10_000 + "]" * 10_000, "{" * 3_000]]),
    _csv_bytes([["id", "name"], ["U-H", "h" * 200_000]]),
    _csv_bytes([["id", "id", "id"], ["a", "b", "c", "d", "e"]]),
    _csv_bytes([["", "."], ["..", "..."]]),
    _csv_bytes([["a.b.c.d", "a.b"], ["1", "2"]]),
]


@st.composite
def csv_file(draw: st.DrawFn, kind: str) -> bytes:
    """A CSV of the kind's valid objects with a few cells or headers made hostile."""
    objs = VALID_OBJECTS.get(kind) or [{"id": "X"}]
    obj = draw(st.sampled_from(objs))
    flat = {k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in obj.items()}
    header = list(flat)
    cells = list(flat.values())
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(header)))
        value = draw(hostile_text)
        if i == len(header) or draw(st.booleans()):
            header.append(draw(st.one_of(st.sampled_from([*FIELD_NAMES, "x.y", "ladder.x", ""]), text)))
            cells.append(value)
        else:
            cells[i] = value
    delimiter = draw(st.sampled_from([",", ";"]))
    return _csv_bytes([header, [c.replace("\n", " ") for c in cells]], delimiter)


def upload(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """Multipart upload arguments for httpx."""
    names = st.sampled_from(["x.csv", "x.xlsx", "x.CSV", "", "../../x.xlsx", "ü😀.csv", "x" * 300 + ".csv"])
    content = st.one_of(st.sampled_from(FILE_CONTENTS), st.binary(max_size=300), csv_file(kind))
    mime = st.sampled_from(["text/csv", "application/octet-stream", "application/json", "image/png"])
    field_name = st.sampled_from(["file", "file", "file", "other"])
    return st.builds(lambda f, n, c, m: {"files": {f: (n, c, m)}}, field_name, names, content, mime)


# ---------------------------------------------------------------------------------------------------- bodies


def valid_bodies(method: str, path: str) -> list[Any]:
    """Bodies that the route accepts (or nearly), to be mutated into hostile ones."""
    kind = next((k for k in KINDS if f"/{k}" in path), None)
    if path.endswith("/rounds"):
        return [{"round_date": "2027-01-15", "time_limit_s": 2, "pins": [{"candidate_id": "CAND-A", "offer_id": "O1"}]}]
    if path.endswith("/rerun"):
        return [{"pins": [], "forbids": [{"candidate_id": "CAND-A", "offer_id": "O1"}], "time_limit_s": 1}]
    if path.endswith("/regions"):
        return [{"code": "07", "name": "Fuzz"}]
    if path.endswith("/users"):
        return [{"username": "fuzzed", "password": "long-enough-pass", "role": "clinic", "region": "01", "unit": "U1"}]
    if path.endswith("/users/{user_id}"):
        return [{"password": "long-enough-pass", "active": True}]
    if kind and method in ("POST", "PATCH"):
        objs = VALID_OBJECTS[kind]
        if kind == "candidates":
            identity = {"personnummer": "19800101-9806", "given_name": "Test", "family_name": "Testsson"}
            objs = [*objs, {**objs[0], "id": "CAND-F", "identity": identity}]
        return objs
    return [{}]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(body: Any, path: tuple[Any, ...], action: str, value: Any, extra_key: str) -> Any:
    body = json.loads(json.dumps(body))
    if not path:
        return value if action == "replace" else body
    node = body
    for part in path[:-1]:
        node = node[part]
    last = path[-1]
    if action == "delete":
        del node[last]
    elif action == "extra" and isinstance(node, dict):
        node[extra_key] = value
    else:
        node[last] = value
    return body


@st.composite
def mutated(draw: st.DrawFn, bodies: list[Any]) -> Any:
    """A valid body with one place replaced by a hostile value, deleted, or given an extra field."""
    body = draw(st.sampled_from(bodies))
    body = json.loads(json.dumps(body))
    for _ in range(draw(st.integers(1, 2))):
        paths = _paths(body) or [()]
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "extra"]))
        body = _mutate(body, path, action, draw(json_value), draw(st.one_of(st.sampled_from(FIELD_NAMES), text)))
    return body


def _json_kw(value: Any) -> dict[str, Any]:
    # allow_nan: NaN and Infinity are what a hostile client sends too (Python's parser accepts them).
    return {"content": json.dumps(value, allow_nan=True).encode(), "headers": {"Content-Type": "application/json"}}


def json_body(method: str, path: str) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for a JSON body: mutated valid bodies, random JSON, raw garbage."""
    bodies = valid_bodies(method, path)
    raw = st.sampled_from(RAW_BODIES).map(lambda b: {"content": b[0], "headers": {"Content-Type": b[1]}})
    return st.one_of(
        mutated(bodies).map(_json_kw),
        mutated(bodies).map(_json_kw),
        st.sampled_from(bodies).map(_json_kw),
        json_value.map(_json_kw),
        raw,
        st.just({}),
    )


def login_form() -> st.SearchStrategy[dict[str, Any]]:
    """Login form fields, some missing, some hostile; or not a form at all."""
    value = st.one_of(hostile_text, st.sampled_from(["admin", PASSWORD, "x" * 10_000]))
    names = st.sampled_from(["username", "password", "grant_type", "scope", "client_id", "other"])
    form = st.dictionaries(names, value, max_size=5).map(lambda d: {"data": d})
    raw = st.sampled_from(RAW_BODIES).map(lambda b: {"content": b[0], "headers": {"Content-Type": b[1]}})
    return st.one_of(form, form, raw, json_value.map(_json_kw))


# ---------------------------------------------------------------------------------------------------- requests


@dataclass
class Context:
    """Ids of the fuzzed service's objects and credentials that are broken in every way we could think of."""

    client: httpx.Client
    valid: dict[str, list[str]]
    credentials: dict[str, dict[str, str]] = field(default_factory=dict)


def _params(dependant: Dependant, kind: str) -> list[Any]:
    """The query or body parameters of a route and all its dependencies."""
    own = list(getattr(dependant, kind))
    return own + [p for d in dependant.dependencies for p in _params(d, kind)]


def _odd_path_values() -> st.SearchStrategy[str]:
    return st.one_of(
        hostile_int.map(str),
        hostile_text,
        st.sampled_from(["0", "-1", "1.5", "0x10", "1_000", " 1", "1e3", "٣", "¹", "∞", ".", ".."]),
    )


def _query_values(name: str) -> st.SearchStrategy[str]:
    known = {
        "limit": ["1", "200", "201", "0", "-1", "50"],
        "offset": ["0", "10000000", "10000001", "-5"],
        "format": ["csv", "xlsx", "pdf", "CSV"],
        "reveal": ["true", "false", "1", "yes", "maybe"],
        "partial": ["true", "false", "2"],
        "status": ["published", "draft", "waiting", "solving", "solved", "x" * 33],
        "answer": ["pending", "accepted", "declined", "maybe"],
        "unit": ["U1", "U2", "U999"],
        "profession": ["physician", "nurse", "astronaut"],
        "role": ["admin", "coordinator", "clinic", "x" * 17],
    }
    return st.one_of(st.sampled_from(known.get(name, ["x"])), hostile_int.map(str), hostile_text)


def request_strategy(
    route: APIRoute | BaseRoute, method: str, path: str, ctx: Context
) -> st.SearchStrategy[dict[str, Any]]:
    """One request for the route: credentials, path, query, headers and body, each valid or hostile."""
    names = re.findall(r"{(\w+)}", path)
    kind = next((k for k in KINDS if f"/{k}/" in path or path.endswith(f"/{k}")), "candidates")

    def path_value(name: str) -> st.SearchStrategy[str]:
        valid = ctx.valid.get(f"{name}:{kind}") or ctx.valid.get(name) or ["1"]
        return st.one_of(st.sampled_from(valid), st.sampled_from(valid), _odd_path_values())

    path_values = st.fixed_dictionaries({n: path_value(n) for n in names})
    query_names: list[str] = []
    body: st.SearchStrategy[dict[str, Any]] = st.one_of(st.just({}), st.just({}), json_value.map(_json_kw))
    if isinstance(route, APIRoute):
        query_names = sorted({p.alias for p in _params(route.dependant, "query_params")})
        infos = [p.field_info for p in _params(route.dependant, "body_params")]
        if any(isinstance(i, params.File) for i in infos):
            body = st.one_of(upload(kind), upload(kind), upload(kind), json_body(method, path))
        elif any(isinstance(i, params.Form) for i in infos):
            body = login_form()
        elif infos:
            body = json_body(method, path)
    query = st.dictionaries(
        st.one_of(st.sampled_from(query_names or ["q"]), st.sampled_from(query_names or ["q"]), text),
        st.just(""),
        max_size=4,
    ).flatmap(lambda d: st.fixed_dictionaries({k: _query_values(k) for k in d}))
    idempotency = st.one_of(
        st.none(), st.uuids().map(str), st.sampled_from(["", "k", "x" * 201, "ÅÄÖ", "same-key", "same-key"])
    )
    who = st.sampled_from([*USERS, *USERS, *USERS, *ctx.credentials])
    return st.fixed_dictionaries(
        {"who": who, "path": path_values, "query": query, "body": body, "idempotency": idempotency}
    )


def _header_safe(value: str) -> bytes:
    # HTTP headers carry latin-1 without control characters; anything else is not something a client can send.
    return "".join(c for c in value if " " <= c <= "~" or "\xa0" <= c <= "\xff").encode("latin-1")


def send(service: Service, ctx: Context, method: str, path: str, drawn: dict[str, Any]) -> Any:
    """Send the drawn request; returns the response."""
    url = path
    for name, value in drawn["path"].items():
        url = url.replace("{" + name + "}", quote(value, safe="") or "%20")
    kw = dict(drawn["body"])
    headers: dict[str, Any] = dict(kw.pop("headers", {}))
    who = drawn["who"]
    if who in USERS:
        headers["Authorization"] = f"Bearer {service.token(who)}"
    else:
        headers.update(ctx.credentials[who])
    if drawn["idempotency"] is not None:
        headers["Idempotency-Key"] = _header_safe(drawn["idempotency"])
    try:
        return ctx.client.request(method, url, params=drawn["query"], headers=headers, **kw)
    except httpx.TransportError:
        # The server closes a connection after an error it could not handle; the retry shows that error.
        return ctx.client.request(method, url, params=drawn["query"], headers=headers, **kw)


class _Errors(logging.Handler):
    """Keeps the service's logged exceptions so that a failure shows the server-side traceback."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.last = self.format(record)


SERVER_ERRORS = _Errors()
logging.getLogger("vardmatch.api").addHandler(SERVER_ERRORS)


def check(response: Any, method: str, path: str) -> None:
    """The contract: no 5xx, problem+json for every 4xx of the API (a page for the web's), no traceback text."""
    where = f"{method} {response.request.url} -> {response.status_code}: {response.text[:500]}"
    if response.status_code >= 500:
        where += "\nserver: " + SERVER_ERRORS.last[-3000:]
    assert response.status_code < 500, where
    assert not TRACEBACK.search(response.text), where
    if response.status_code >= 400 and not response.request.url.path.startswith("/api/"):
        # A web page (api/web) answers a refusal with a page carrying the status, in the visitor's language.
        assert response.headers["content-type"].startswith("text/html"), where
        return
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", where
        body = response.json()
        assert {"type", "title", "status"} <= body.keys(), where
        assert body["status"] == response.status_code, where
        assert body["type"].startswith("urn:vardmatch:problem:"), where


def _unsigned(claims: dict[str, Any]) -> str:
    """A token with alg=none and no signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.fixture(scope="module")
def ctx(service: Service) -> Iterator[Context]:
    """Log everybody in before the login route is fuzzed (failed logins lock the client out), make a solved round
    with proposals, an API key and a user the fuzzer may deactivate."""
    for user in USERS:
        service.token(user)
    secret = service.app.state.signing.secret()
    r = service.call(
        "coord01",
        "POST",
        "/regions/01/rounds",
        json={"round_date": "2027-01-15", "time_limit_s": 5},
        headers={"Idempotency-Key": "fuzz-setup"},
    )
    assert r.status_code == 202, r.text
    round_id = r.json()["id"]
    assert service.wait_round("coord01", "01", round_id)["status"] == "solved"
    proposals = service.call("coord01", "GET", f"/regions/01/rounds/{round_id}/proposals").json()["items"]
    victim = service.call(
        "admin", "POST", "/users", json={"username": "fuzz-victim", "password": "long-enough-pass", "role": "admin"}
    )
    assert victim.status_code == 201, victim.text
    key = service.call("coord01", "POST", "/me/api-keys", params={"name": "fuzz"}).json()["key"]
    now = utcnow()

    def forged(claims: dict[str, Any], secret: str = secret) -> dict[str, str]:
        return {"Authorization": "Bearer " + jwt.encode(claims, secret, algorithm=ALGORITHM)}

    exp = now + timedelta(minutes=5)
    credentials = {
        "none": {},
        "garbage-bearer": {"Authorization": "Bearer not.a.token"},
        "empty-bearer": {"Authorization": "Bearer"},
        "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        "expired": {"Authorization": "Bearer " + create_token(1, secret, -5)},
        "wrong-secret": {"Authorization": "Bearer " + create_token(1, "another-secret-of-enough-length!!", 5)},
        "alg-none": {
            "Authorization": "Bearer " + _unsigned({"sub": "1", "exp": int(exp.timestamp()), "typ": "access"})
        },
        "sub-huge": forged({"sub": str(10**30), "exp": exp, "typ": "access"}),
        "sub-negative": forged({"sub": "-1", "exp": exp, "typ": "access"}),
        "sub-text": forged({"sub": "admin", "exp": exp, "typ": "access"}),
        "sub-missing": forged({"exp": exp, "typ": "access"}),
        "typ-refresh": forged({"sub": "1", "exp": exp, "typ": "refresh"}),
        "api-key": {"X-API-Key": key},
        "api-key-garbage": {"X-API-Key": "vm_deadbeef0000_garbage"},
        "api-key-shape": {"X-API-Key": "vm__"},
        "api-key-long-prefix": {"X-API-Key": "vm_" + "a" * 300 + "_x"},
        "api-key-and-bad-bearer": {"X-API-Key": key, "Authorization": "Bearer nope"},
    }
    valid = {
        "region": ["01", "02"],
        "round_id": [str(round_id)],
        "proposal_id": [str(p["id"]) for p in proposals[:3]],
        "user_id": [str(victim.json()["id"])],
        **{f"ref:{k}": [o["id"] for o in VALID_OBJECTS[k]] for k in KINDS},
    }
    # One client for all requests: a new httpx.Client per request costs ~40 ms (it builds an SSL context).
    with httpx.Client(base_url=service.base_url, timeout=60) as client:
        yield Context(client=client, valid=valid, credentials=credentials)


def test_every_route_is_fuzzed(service: Service) -> None:
    assert _route_table(service.app.routes) == ROUTES


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_no_5xx_on_hostile_input(service: Service, ctx: Context, method: str, path: str) -> None:
    route = _route_contexts(service.app.routes)[(method, path)]

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(drawn=request_strategy(route, method, path, ctx))
    def fuzz(drawn: dict[str, Any]) -> None:
        check(send(service, ctx, method, path, drawn), method, path)

    fuzz()


# ---------------------------------------------------------------------------------------------------- fixed probes

# Random generation finds the unexpected; these make sure the known-dangerous values reach every place on every
# run: each path id, query parameter, body field and upload below gets each of them once.
PATH_PROBES = ["\x00", "a\x00b", str(2**31), str(2**63), str(10**30), "-1", "0", "x" * 300, "😀", " ", "%00"]
QUERY_PROBES = ["\x00", "a\x00b", str(2**63), str(10**30), "-1", "x" * 300, "😀", ""]
BODY_PROBES: list[Any] = ["a\x00b", "x" * 5000, 10**30, -1, float("inf"), None, {}]
IDEMPOTENCY_PROBES = [None, "", "x" * 201, "ÅÄÖ"]
_fresh = itertools.count(1)


def _fresh_body(body: Any, path: str) -> Any:
    """A valid body with a never-used id (or username, region code) so that it is not refused as a duplicate."""
    if not isinstance(body, dict):
        return body
    n = next(_fresh)
    body = dict(body)
    if "id" in body:
        body["id"] = f"FZ{n}"
    if path.endswith("/users"):
        body["username"] = f"fuzz{n}"
    if path.endswith("/regions"):
        body["code"] = f"{10 + n % 90:02d}"
    return body


def _nul_csvs(kind: str) -> list[bytes]:
    """One CSV per text field of a valid object, with a NUL character in that field."""
    obj = VALID_OBJECTS[kind][0]
    out = []
    for name, value in obj.items():
        if isinstance(value, str) and name != "id":
            row = {**obj, name: "a\x00b", "id": f"FZN{name}"}
            flat = {k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in row.items()}
            out.append(_csv_bytes([list(flat), list(flat.values())]))
    return out


def _valid_csv(kind: str) -> bytes:
    obj = {**VALID_OBJECTS[kind][0], "id": f"FZV{next(_fresh)}"}
    flat = {k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in obj.items()}
    return _csv_bytes([list(flat), list(flat.values())])


def probes(route: Any, method: str, path: str, ctx: Context) -> Iterator[dict[str, Any]]:
    """Fixed hostile requests for the route, each changing one thing of a valid request."""
    names = re.findall(r"{(\w+)}", path)
    kind = next((k for k in KINDS if f"/{k}/" in path or path.endswith(f"/{k}")), "candidates")
    valid_path = {n: (ctx.valid.get(f"{n}:{kind}") or ctx.valid.get(n) or ["1"])[0] for n in names}
    query_names = (
        sorted({p.alias for p in _params(route.dependant, "query_params")}) if hasattr(route, "dependant") else []
    )
    infos = [p.field_info for p in _params(route.dependant, "body_params")] if hasattr(route, "dependant") else []
    is_file = any(isinstance(i, params.File) for i in infos)
    is_form = any(isinstance(i, params.Form) for i in infos)
    bodies = valid_bodies(method, path)

    def body_kw() -> dict[str, Any]:
        if is_file:
            return {"files": {"file": ("x.csv", _valid_csv(kind) if kind in VALID_OBJECTS else b"id\n", "text/csv")}}
        if is_form:
            return {"data": {"username": "admin", "password": "wrong-password"}}
        return _json_kw(_fresh_body(bodies[0], path)) if infos else {}

    def base(**changes: Any) -> dict[str, Any]:
        drawn = {"who": "admin", "path": dict(valid_path), "query": {}, "body": body_kw(), "idempotency": "probe"}
        drawn["idempotency"] = f"probe-{next(_fresh)}"
        drawn.update(changes)
        return drawn

    for who in [*USERS, *ctx.credentials]:
        yield base(who=who)
    for name in names:
        for value in PATH_PROBES:
            yield base(path={**valid_path, name: value})
    for name in query_names:
        for value in QUERY_PROBES:
            yield base(query={name: value})
    for value in IDEMPOTENCY_PROBES:
        yield base(idempotency=value)
    if is_file:
        contents = [*FILE_CONTENTS, *(_nul_csvs(kind) if kind in VALID_OBJECTS else [])]
        for content in contents:
            for filename in ("x.csv", "x.xlsx"):
                yield base(body={"files": {"file": (filename, content, "text/csv")}})
        for filename in ("x" * 300 + ".csv", "a\x00b.csv", "", "😀.csv"):
            content = _valid_csv(kind) if kind in VALID_OBJECTS else b"id\n"
            yield base(body={"files": {"file": (filename, content, "text/csv")}})
    elif is_form:
        for field_name in ("username", "password", "grant_type"):
            for value in ["a\x00b", "x" * 10_000, "", "😀"]:
                yield base(body={"data": {"username": "admin", "password": "wrong-password", field_name: value}})
    elif infos:
        for raw, content_type in RAW_BODIES:
            yield base(body={"content": raw, "headers": {"Content-Type": content_type}})
        body = bodies[-1]  # for candidates: the one with an identity
        for place in _paths(body):
            for value in BODY_PROBES:
                yield base(body=_json_kw(_fresh_body(_mutate(body, place, "replace", value, ""), path)))


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_no_5xx_on_known_hostile_values(service: Service, ctx: Context, method: str, path: str) -> None:
    route = _route_contexts(service.app.routes)[(method, path)]
    failures = []
    for drawn in probes(route, method, path, ctx):
        try:
            check(send(service, ctx, method, path, drawn), method, path)
        except AssertionError as exc:
            failures.append(f"{exc}\n  request: {repr(drawn)[:300]}")
    assert not failures, f"{len(failures)} failure(s):\n" + "\n".join(failures[:5])
