"""Import a CSV or XLSX file of region objects: every broken row is shown in a table, and nothing is written unless
all rows are valid (the API's import, with its reader process, limits and checks)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.params import Query
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from api.core import imports, services, tabular
from api.core.errors import PayloadTooLarge, Unprocessable
from api.core.snapshot import KINDS
from api.http.deps import SessionDep, SettingsDep
from api.web.pages import coordinator_only, page
from api.web.render import WebRoute
from api.web.session import Csrf, WebSubject, form_values

router = APIRouter(route_class=WebRoute)
IMPORTABLE = ("offers", "candidates", "supervisors", "units", "programmes")


@router.get("/regions/{region}/import")
def import_page(
    request: Request,
    region: str,
    session: SessionDep,
    subject: WebSubject,
    kind: Annotated[str, Query(max_length=20)] = "offers",
) -> Response:
    """The upload form."""
    reg = services.region_for(session, subject, region)
    coordinator_only(subject)
    return page(request, "import.html", region=reg.code, reg=reg, kinds=IMPORTABLE, kind=kind, report=None)


@router.post("/regions/{region}/import", dependencies=[Csrf])
def import_upload(
    request: Request, region: str, session: SessionDep, subject: WebSubject, settings: SettingsDep
) -> Response:
    """Check the file (and, unless only checking, import it when every row is valid)."""
    reg = services.region_for(session, subject, region)
    coordinator_only(subject)
    values = form_values(request)
    kind_name = values.get("kind", "")
    if kind_name not in IMPORTABLE:
        raise Unprocessable("1 invalid field(s)", errors=[{"field": "kind", "message": "unknown", "type": "enum"}])
    upload = request.state.form_data.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise Unprocessable(
            "1 invalid field(s)", errors=[{"field": "file", "message": "choose a file", "type": "missing"}]
        )
    content = upload.file.read(settings.max_upload_bytes + 1)
    if len(content) > settings.max_upload_bytes:
        raise PayloadTooLarge(f"uploads are limited to {settings.max_upload_bytes} bytes")
    kind = KINDS[kind_name]
    reader = request.app.state.import_process
    check_only = values.get("check_only") == "on"
    report: dict[str, object]
    try:
        if check_only:
            limits = (settings.max_import_rows, settings.max_unpacked_bytes)
            parsed = reader.parse(kind.name, reg.code, content, upload.filename, *limits)
            plan = imports.plan_import(session, kind, subject, reg, parsed)
            report = {"checked": parsed.count, "valid": len(plan.rows), "errors": plan.errors, "written": False}
        else:
            counts = imports.import_file(session, kind, subject, reg, content, upload.filename, False, settings, reader)
            report = {**counts, "written": True}
    except tabular.TooLarge as exc:
        raise PayloadTooLarge(f"the file is too large to import: {exc}") from None
    except Unprocessable as exc:
        session.rollback()
        report = {"errors": exc.extra.get("errors", []), "written": False, "detail": exc.detail}
    status = 422 if report["errors"] else 200
    response = page(request, "import.html", region=reg.code, reg=reg, kinds=IMPORTABLE, kind=kind_name, report=report)
    response.status_code = status
    return response
