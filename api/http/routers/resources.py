"""Region objects (units, supervisors, offers, candidates, programmes): list, read, create, update, import, export.

Built by one factory so that every kind gets the same scoping, errors, pagination and file formats.
"""

# No `from __future__ import annotations`: the route signatures use the factory's closure types.

from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Query, Request, Response, UploadFile

from api.core import imports, services, tabular
from api.core.audit import audit
from api.core.errors import PayloadTooLarge, Unprocessable
from api.core.identity import normalise
from api.core.schemas import (
    CandidateCreate,
    CandidateRead,
    ClinicCandidateRead,
    ImportReport,
    OfferRead,
    Page,
    ProgrammeRead,
    SupervisorRead,
    UnitRead,
)
from api.core.snapshot import CANDIDATES, KINDS, OFFERS, Kind
from api.http.deps import Offset, SessionDep, SettingsDep, SubjectDep
from api.http.errors import problem_responses
from models import CandidateIdentity, Region
from models.queries import Subject

READ_MODELS: dict[str, Any] = {
    "units": UnitRead,
    "supervisors": SupervisorRead,
    "offers": OfferRead,
    "candidates": CandidateRead | ClinicCandidateRead,
    "programmes": ProgrammeRead,
}
FILTERS = {
    "units": (),
    "supervisors": ("unit",),
    "offers": ("unit", "status", "profession"),
    "candidates": ("status", "profession"),
    "programmes": (),
}
Limit = Annotated[int, Query(ge=1, le=200, description="page size (at most 200)")]
Format = Annotated[str, Query(pattern="^(csv|xlsx)$")]
ERRORS = problem_responses(401, 403, 404, 409, 413, 422)


def _store_identity(session: Any, subject: Subject, region: Region, row: Any, identity: Any) -> None:
    number = normalise(identity.personnummer)
    if number is None:
        raise Unprocessable(
            "not a valid personnummer or samordningsnummer",
            errors=[
                {"field": "identity.personnummer", "message": "invalid check digit or date", "type": "personnummer"}
            ],
        )
    session.add(
        CandidateIdentity(
            candidate_id=row.id, personnummer=number, given_name=identity.given_name, family_name=identity.family_name
        )
    )
    audit(session, subject, "identity.create", "candidate", row.ref, region.id)


def build_router(kind: Kind) -> APIRouter:
    """Routes for one kind of region object."""
    router = APIRouter(prefix=f"/regions/{{region}}/{kind.name}", tags=[kind.name])
    read_model = READ_MODELS[kind.name]
    create_model: Any = CandidateCreate if kind is CANDIDATES else kind.engine_type
    singular = kind.name[:-1]

    def list_(
        region: str,
        session: SessionDep,
        subject: SubjectDep,
        limit: Limit = 50,
        offset: Offset = 0,
        unit: Annotated[str | None, Query(description="unit id (offers, supervisors)")] = None,
        status: Annotated[str | None, Query(max_length=32)] = None,
        profession: Annotated[str | None, Query(max_length=32)] = None,
        archived: Annotated[bool, Query(description="list the archived ones (kept for stored rounds)")] = False,
    ) -> Any:
        reg = services.region_for(session, subject, region)
        given = {"unit": unit, "status": status, "profession": profession}
        filters = {k: v for k, v in given.items() if k in FILTERS[kind.name]}
        return services.list_objects(session, kind, subject, reg, filters, limit, offset, archived)

    list_.__doc__ = f"List the region's {kind.name} you may see (paginated, filterable)."
    router.add_api_route(
        "", list_, methods=["GET"], response_model=Page[read_model], responses=ERRORS, operation_id=f"list_{kind.name}"
    )

    def get(region: str, ref: str, session: SessionDep, subject: SubjectDep) -> Any:
        reg = services.region_for(session, subject, region)
        return services.read_view(kind, subject, reg, services.get_object(session, kind, subject, reg, ref))

    get.__doc__ = f"Read one {singular} by id."
    router.add_api_route(
        "/{ref}", get, methods=["GET"], response_model=read_model, responses=ERRORS, operation_id=f"get_{singular}"
    )

    def create(region: str, body: Annotated[create_model, Body()], session: SessionDep, subject: SubjectDep) -> Any:  # type: ignore[valid-type]
        reg = services.region_for(session, subject, region)
        identity = getattr(body, "identity", None)
        obj = kind.engine_type.model_validate(body.model_dump(exclude={"identity"}))
        row = services.create_object(session, kind, subject, reg, obj)
        if identity is not None:
            _store_identity(session, subject, reg, row, identity)
        return services.read_view(kind, subject, reg, row)

    create.__doc__ = f"Create a {singular} in the region."
    router.add_api_route(
        "",
        create,
        methods=["POST"],
        status_code=201,
        response_model=read_model,
        responses=ERRORS,
        operation_id=f"create_{singular}",
    )

    def patch(
        region: str, ref: str, changes: Annotated[dict[str, Any], Body()], session: SessionDep, subject: SubjectDep
    ) -> Any:
        reg = services.region_for(session, subject, region)
        row = services.get_object(session, kind, subject, reg, ref, write=True)
        return services.read_view(kind, subject, reg, services.update_object(session, kind, subject, reg, row, changes))

    patch.__doc__ = f"Change fields of a {singular}; the result is validated as a whole."
    router.add_api_route(
        "/{ref}",
        patch,
        methods=["PATCH"],
        response_model=read_model,
        responses=ERRORS,
        operation_id=f"update_{singular}",
    )

    def import_(
        region: str,
        request: Request,
        session: SessionDep,
        subject: SubjectDep,
        settings: SettingsDep,
        file: Annotated[UploadFile, File(description="CSV (UTF-8, comma or semicolon) or XLSX, one object per row")],
        partial: Annotated[bool, Query(description="import the valid rows even if others are broken")] = False,
    ) -> Any:
        # A plain function: FastAPI runs it in a worker thread, so reading and checking a big file never blocks
        # the event loop (and with it every other request).
        content = file.file.read(settings.max_upload_bytes + 1)
        if len(content) > settings.max_upload_bytes:
            raise PayloadTooLarge(f"uploads are limited to {settings.max_upload_bytes} bytes")
        reg = services.region_for(session, subject, region)
        reader = request.app.state.import_process
        return imports.import_file(session, kind, subject, reg, content, file.filename or "", partial, settings, reader)

    import_.__doc__ = (
        f"Import {kind.name} from CSV or XLSX; every broken row is reported, and nothing is written "
        "unless all rows are valid or `partial` is set."
    )
    router.add_api_route(
        "/import",
        import_,
        methods=["POST"],
        response_model=ImportReport,
        responses=problem_responses(401, 403, 404, 413, 422),
        operation_id=f"import_{kind.name}",
    )

    def export(region: str, session: SessionDep, subject: SubjectDep, format: Format = "csv") -> Response:
        reg = services.region_for(session, subject, region)
        rows = [
            tabular.flatten(services.read_view(kind, subject, reg, r))
            for r in session.scalars(services.scoped(kind, subject, reg))
        ]
        return tabular.download({kind.name: rows}, kind.name, format)

    export.__doc__ = f"Export the {kind.name} you may see as CSV or XLSX (no identity numbers; formulas escaped)."
    router.add_api_route(
        "/export",
        export,
        methods=["GET"],
        response_class=Response,
        responses={200: tabular.DOWNLOAD_RESPONSE, **ERRORS},
        operation_id=f"export_{kind.name}",
    )
    # /import and /export must win over /{ref}
    router.routes.sort(key=lambda r: "{ref}" in getattr(r, "path", ""))
    return router


def offer_actions() -> APIRouter:
    """Publish and withdraw routes for offers."""
    router = APIRouter(prefix="/regions/{region}/offers", tags=["offers"])

    def _set(region: str, ref: str, session: SessionDep, subject: SubjectDep, status: str) -> Any:
        reg = services.region_for(session, subject, region)
        row = services.get_object(session, OFFERS, subject, reg, ref, write=True)
        return services.read_view(OFFERS, subject, reg, services.set_offer_status(session, subject, reg, row, status))

    @router.post("/{ref}/publish", response_model=OfferRead, responses=ERRORS)
    def publish_offer(region: str, ref: str, session: SessionDep, subject: SubjectDep) -> Any:
        """Publish an offer so that rounds match it."""
        return _set(region, ref, session, subject, "published")

    @router.post("/{ref}/withdraw", response_model=OfferRead, responses=ERRORS)
    def withdraw_offer(region: str, ref: str, session: SessionDep, subject: SubjectDep) -> Any:
        """Withdraw an offer; later rounds no longer match it."""
        return _set(region, ref, session, subject, "withdrawn")

    return router


def routers() -> list[APIRouter]:
    """Every region-object router."""
    return [offer_actions(), *(build_router(k) for k in KINDS.values())]
