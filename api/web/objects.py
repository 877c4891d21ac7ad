"""Create and edit forms for every kind of region object: units, candidates (profile and wishes: the identity is
never on these pages), supervisors, offers and funding programmes (budget, earmarks, caps, spend-by).

Every read and write is the API's service call with the page user's subject (`services.get_object`,
`create_object`, `update_object`): the same scoping, checks, commitment limits and refusals as
`POST`/`PATCH /api/v1/regions/{region}/{kind}`, in the request's one transaction. A form the API would refuse comes
back with each problem next to its field, in the visitor's language, and nothing is written.

Two routers, because of the order of paths: `/{kind}/new` must be matched before the clinic's unit page
(`/units/{ref}`), and the edit pages (`/{kind}/{ref}`) after it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic_core import to_jsonable_python
from sqlalchemy.orm import Session

from api.core import services
from api.core.errors import Forbidden, NotFound, Unprocessable
from api.core.snapshot import KINDS, OFFERS, UNITS, Kind, engine_object
from api.http.deps import SessionDep
from api.web.forms import (
    Field,
    defaults_of,
    errors_by_field,
    fields_of,
    read_form,
    row_count,
    submitted_values,
    values_of,
)
from api.web.pages import page
from api.web.render import WebRoute, redirect
from api.web.session import Csrf, WebSubject, form_values
from models import Region, Unit

new_router = APIRouter(route_class=WebRoute)
router = APIRouter(route_class=WebRoute)


def _kind(kind_name: str) -> Kind:
    kind = KINDS.get(kind_name)
    if kind is None:
        raise NotFound(f"no page {kind_name}")
    return kind


def _fields(kind: Kind) -> list[Field]:
    return fields_of(kind.engine_type)


def form_page(
    request: Request,
    reg: Region,
    kind: Kind,
    values: dict[str, str],
    creating: bool,
    errors: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> Response:
    """The form of one object, with the API's problems (if any) next to the fields they are about."""
    fields = _fields(kind)
    by_field = errors_by_field(fields, errors or [])
    response = page(
        request,
        "object_form.html",
        region=reg.code,
        reg=reg,
        kind=kind.name,
        fields=fields,
        values=values,
        creating=creating,
        field_errors=by_field,
        # All of them above the form too (a summary to start from), each also next to its field.
        errors=errors or [],
        any_errors=bool(errors),
        issues=[],
        rows={f.name: row_count(values, f.name) for f in fields if f.kind == "rows"},
    )
    response.status_code = status_code
    return response


@new_router.get("/regions/{region}/{kind_name}/new")
def new_object(request: Request, region: str, kind_name: str, session: SessionDep, subject: WebSubject) -> Response:
    """A form for a new object with the engine's defaults (a clinic's offer or supervisor: at its own unit)."""
    kind = _kind(kind_name)
    reg = services.region_for(session, subject, region)
    if not services.may_create(subject, kind, reg):
        # The API's answer to the POST this form would make.
        raise Forbidden(f"your role may not create {kind.name}")
    values = defaults_of(kind.engine_type)
    if subject.unit_id and kind.per_unit:
        unit = session.get(Unit, subject.unit_id)
        values["unit_id"] = unit.ref if unit else ""
    if kind is OFFERS:
        values["status"] = "draft"
    return form_page(request, reg, kind, values, creating=True)


@new_router.post("/regions/{region}/{kind_name}/new", dependencies=[Csrf])
def create_object(request: Request, region: str, kind_name: str, session: SessionDep, subject: WebSubject) -> Response:
    """Create an object through the API's service (same checks, same refusals)."""
    kind = _kind(kind_name)
    reg = services.region_for(session, subject, region)
    values, lists = form_values(request), form_lists_of(request)
    data = read_form(_fields(kind), values, lists)
    try:
        obj = services.validate(kind, data)
        row = services.create_object(session, kind, subject, reg, obj)
    except Unprocessable as exc:
        session.rollback()
        shown = submitted_values(_fields(kind), values, lists)
        return form_page(request, reg, kind, shown, True, exc.extra.get("errors") or _detail(exc), 422)
    return redirect(after_save(session, reg, kind, row))


def form_lists_of(request: Request) -> dict[str, list[str]]:
    """Every field of the submitted form with all its values (the ticked boxes of a list of codes), as the CSRF
    check read them."""
    lists: dict[str, list[str]] = getattr(request.state, "form_lists", {})
    return lists


def _detail(exc: Unprocessable) -> list[dict[str, Any]]:
    return [{"field": "", "message": exc.detail, "type": exc.slug}]


@router.get("/regions/{region}/{kind_name}/{ref}/edit")
@router.get("/regions/{region}/{kind_name}/{ref}")
def edit_object(
    request: Request, region: str, kind_name: str, ref: str, session: SessionDep, subject: WebSubject
) -> Response:
    """The form of an object the subject may change: 404 if they may not read it, 403 if they may read but not
    change it (the API's answers to the PATCH this form would make; a clinic never gets a candidate's form)."""
    kind = _kind(kind_name)
    reg = services.region_for(session, subject, region)
    row = services.get_object(session, kind, subject, reg, ref, write=True)
    # The whole object, defaults included: a default left out of the form (a ticked box) would be saved as unset.
    values = values_of(engine_object(kind, row).model_dump(mode="json"))
    return form_page(request, reg, kind, values, creating=False)


@router.post("/regions/{region}/{kind_name}/{ref}", dependencies=[Csrf])
def save_object(
    request: Request, region: str, kind_name: str, ref: str, session: SessionDep, subject: WebSubject
) -> Response:
    """Save an edited object through the API's service: the form is the whole object, so a field emptied on it
    goes back to the engine's default."""
    kind = _kind(kind_name)
    reg = services.region_for(session, subject, region)
    row = services.get_object(session, kind, subject, reg, ref, write=True)
    values, lists = form_values(request), form_lists_of(request)
    changes = whole_object(kind, read_form(_fields(kind), {**values, "id": ref}, lists))
    stored = engine_object(kind, row).model_dump(mode="json")
    changed = {name: value for name, value in changes.items() if stored.get(name) != value}
    try:
        services.update_object(session, kind, subject, reg, row, changed)
    except Unprocessable as exc:
        session.rollback()
        shown = submitted_values(_fields(kind), {**values, "id": ref}, lists)
        return form_page(request, reg, kind, shown, False, exc.extra.get("errors") or _detail(exc), 422)
    return redirect(after_save(session, reg, kind, row))


def whole_object(kind: Kind, data: dict[str, Any]) -> dict[str, Any]:
    """The form's data with every attribute it left out (emptied) set to the engine's default for it."""
    out = dict(data)
    for name, info in kind.engine_type.model_fields.items():
        if name not in out and not info.is_required():
            out[name] = to_jsonable_python(info.get_default(call_default_factory=True))
    return out


def after_save(session: Session, reg: Region, kind: Kind, row: Any) -> str:
    """Where a saved object is seen: its unit's page for offers and supervisors, the unit's own page, else the list."""
    if kind is UNITS:
        return f"/regions/{reg.code}/units/{row.ref}"
    unit = session.get(Unit, row.unit_id) if kind.per_unit else None
    return f"/regions/{reg.code}/units/{unit.ref}" if unit else f"/regions/{reg.code}/{kind.name}"
