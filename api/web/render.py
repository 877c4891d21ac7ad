"""Rendering pages: one Jinja2 environment with the gettext catalogue, filters for money and dates, security
headers, and the route class that turns the API's problems into pages."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from api.core.errors import Problem, field_errors
from api.core.redaction import mask_numbers
from api.web import i18n
from api.web.session import LANG_COOKIE, CsrfRefused, LoginRequired, csrf_token, keep_csrf
from models import Role

TEMPLATES = Path(__file__).parent / "templates"
# No inline script or style anywhere: everything comes from /static, and the charts are SVG with attributes.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def money(value: Any) -> str:
    """Whole SEK with thin spaces between thousands (Swedish style): 6 300 000 kr."""
    if value is None or value == "":
        return "–"
    return f"{int(value):,}".replace(",", "\u00a0") + "\u00a0kr"


def number(value: Any, digits: int = 0) -> str:
    """A number with the locale's decimal sign."""
    if value is None:
        return "–"
    text = f"{float(value):,.{digits}f}".replace(",", "\u00a0")
    return text.replace(".", ",") if i18n.current_locale.get() == "sv" else text


def percent(value: Any, digits: int = 1) -> str:
    """A share (0..1) as a percentage."""
    return "–" if value is None else number(float(value) * 100, digits) + "\u00a0%"


def day(value: Any) -> str:
    """ISO date (as Swedes write it)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def term(kind: str, key: str) -> str:
    """A code of the API (a rule, a reason, a weight) in words: the catalogue's `kind:key`, else the key itself
    with spaces (English)."""
    msgid = f"{kind}:{key}"
    text = i18n.gettext(msgid)
    return key.replace("_", " ") if text == msgid else text


def code(key: object) -> str:
    """A code of the API's data (a status, a profession, a field name) in words: its translation, else the code
    with spaces (English)."""
    text = str(key)
    translated = i18n.gettext(text)
    return text.replace("_", " ") if translated == text else translated


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "svg"]),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        code=code,
        money=money,
        number=number,
        percent=percent,
        day=day,
        sentence=i18n.sentence,
        urlquote=quote,
        mask=mask_numbers,
    )
    env.globals["term"] = term
    return env


ENV = _environment()


def locale_of(request: Request) -> str:
    """The page language: the visitor's choice, Swedish by default."""
    return i18n.pick_locale(request.cookies.get(LANG_COOKIE))


def home_path(role: str, region_code: str | None, unit_ref: str | None) -> str:
    """Where a user's pages start: the admin's regions, the coordinator's region, the clinic's unit."""
    if role == Role.ADMIN:
        return "/admin/regions"
    if region_code is None or (role == Role.CLINIC and unit_ref is None):
        return "/login"
    return f"/regions/{region_code}/units/{unit_ref}" if role == Role.CLINIC else f"/regions/{region_code}"


def nav_for(request: Request, region_code: str | None) -> list[tuple[str, str]]:
    """The main menu of the logged-in user's role (empty before login)."""
    user = getattr(request.state, "user", None)
    if user is None:
        return []
    gettext = i18n.gettext
    own_region, unit_ref = request.state.region_code, request.state.unit_ref
    if user.role == Role.CLINIC:
        home = home_path(user.role, own_region, unit_ref)
        return [(home, gettext("My unit")), (f"{home}/commitments", gettext("Commitments"))]
    code = region_code or own_region
    items = [("/admin/regions", gettext("Regions")), ("/admin/users", gettext("Users"))] if user.role == "admin" else []
    if code:
        base = f"/regions/{code}"
        items += [
            (base, gettext("Overview")),
            (f"{base}/rounds", gettext("Rounds")),
            (f"{base}/offers", gettext("Offers")),
            (f"{base}/candidates", gettext("Candidates")),
            (f"{base}/supervisors", gettext("Supervisors")),
            (f"{base}/programmes", gettext("Programmes")),
            (f"{base}/units", gettext("Units")),
            (f"{base}/commitments", gettext("Commitments")),
            (f"{base}/import", gettext("Import")),
        ]
    return items


ROLE_NAMES = {"admin": "administrator", "coordinator": "coordinator", "clinic": "clinic"}


def render(
    request: Request, template: str, status_code: int = 200, nav_region: str | None = None, **context: Any
) -> HTMLResponse:
    """A page in the visitor's language, with the menu of the user's role, its CSRF token and security headers."""
    locale = locale_of(request)
    i18n.current_locale.set(locale)
    user = getattr(request.state, "user", None)
    html = ENV.get_template(template).render(
        request=request,
        locale=locale,
        csrf=csrf_token(request),
        user=user,
        path=request.url.path,
        nav=nav_for(request, nav_region),
        role_name=i18n.gettext(ROLE_NAMES.get(user.role, user.role)) if user else "",
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    keep_csrf(request, response, request.app.state.settings)
    return response


def redirect(url: str) -> RedirectResponse:
    """See other: after a form, the browser loads the result page with GET."""
    return RedirectResponse(url, status_code=303)


def problem_page(request: Request, problem: Problem) -> HTMLResponse:
    """The API's refusal as a page: the same status, title and detail, in the visitor's language."""
    return render(
        request,
        "error.html",
        status_code=problem.status,
        problem=problem,
        errors=problem.extra.get("errors", []),
        issues=problem.extra.get("issues", []),
    )


class WebRoute(APIRoute):
    """A page route: problems become pages, a missing session a redirect to the login page, a bad CSRF a 403."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler so that what the API would answer as problem+json is shown as a page."""
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except LoginRequired as exc:
                target = f"/login?next={quote(exc.next_path, safe='')}"
                if request.headers.get("HX-Request"):
                    # A poll of a page whose session ran out: the whole page goes to the login, not the fragment.
                    page = request.headers.get("HX-Current-URL", "")
                    path = page.split("//", 1)[-1].partition("/")[2]
                    target = f"/login?next={quote('/' + path, safe='')}" if path else "/login"
                    return Response(status_code=200, headers={"HX-Redirect": target})
                return redirect(target)
            except CsrfRefused:
                problem = Problem("the form is out of date or came from another site; reload the page and try again")
                problem.status, problem.title, problem.slug = 403, "Forbidden", "csrf"
                return problem_page(request, problem)
            except Problem as exc:
                return problem_page(request, exc)
            except RequestValidationError as exc:
                errors = field_errors(list(exc.errors()))
                problem = Problem(f"{len(errors)} invalid field(s)", errors=errors)
                problem.status, problem.title = 422, "Validation error"
                return problem_page(request, problem)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return handler
