"""`vardmatch retention`: anonymise the identities whose region's retention period has run out."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import app, fail

if TYPE_CHECKING:
    from api.core.privacy import RegionRetention


def _report_lines(reports: list[RegionRetention], on: date, dry_run: bool) -> list[str]:
    verb = "would anonymise" if dry_run else "anonymised"
    lines = [f"Retention on {on}" + (" (dry run: nothing changed)" if dry_run else "")]
    for r in reports:
        p = r.policy
        lines.append(
            f"Region {r.region} {r.name}: identities kept {p['placed_months']} months after a placement ended, "
            f"{p['withdrawn_months']} after withdrawal or archiving, {p['inactive_months']} after the last activity"
        )
        lines += [f"  {verb} {v.candidate_id}: {v.note}" for v in r.anonymised]
        done = "would be anonymised" if dry_run else "anonymised"
        lines.append(f"  {len(r.anonymised)} {done}, {r.kept} kept")
    return lines


@app.command()
def retention(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what is due; change nothing.")] = False,
    region: Annotated[str | None, typer.Option("--region", help="Only this region (code).")] = None,
    today: Annotated[
        datetime | None, typer.Option("--today", formats=["%Y-%m-%d"], help="Judge as of this day (default: today).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: VARDMATCH_DATABASE_URL or ./vardmatch.sqlite.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Anonymise candidates whose identity is past the region's retention period; prints what it did.

    Only those candidates change (identity row, identifying free text, their mentions in stored rounds); a second
    run finds nothing to do. The service also runs it daily as a job (VARDMATCH_RETENTION_CRON)."""
    from sqlalchemy import select

    from api.core.privacy import run_retention
    from api.core.settings import Settings
    from models import Region
    from models.db import make_engine, make_sessionmaker, transaction

    url = database_url or Settings().database_url
    on = today.date() if today else date.today()
    engine = make_engine(url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            regions = None
            if region is not None:
                regions = list(session.scalars(select(Region).where(Region.code == region)))
                if not regions:
                    fail(f"--region: no region {region!r}")
            reports = run_retention(session, on, dry_run=dry_run, regions=regions)
            if dry_run:
                session.rollback()
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in reports], indent=1, default=str, ensure_ascii=False))
    else:
        typer.echo("\n".join(_report_lines(reports, on, dry_run)))
