"""Builders of small, valid instances for tests: every default makes a pair eligible."""

from __future__ import annotations

from datetime import date
from typing import Any

from matching.input.instance import Instance

ROUND = date(2027, 1, 15)


def unit(uid: str = "U1", **kw: Any) -> dict[str, Any]:
    """A medium regional primary-care unit in Stockholm (0180)."""
    return {
        "id": uid,
        "name": f"Vårdcentral {uid}",
        "hsa_id": "SE2321000016-" + uid.replace("_", "").replace("-", "")[:15],
        "orgnr": "232100-0016",
        "county": "01",
        "municipality": "0180",
        "kind": "primary_care",
        "ownership": "region",
        "size_class": "medium",
        **kw,
    }


def supervisor(sid: str = "S1", unit_id: str = "U1", **kw: Any) -> dict[str, Any]:
    """A licensed physician supervisor with one seat, available from 2027."""
    return {
        "id": sid,
        "unit_id": unit_id,
        "profession": "physician",
        "licensed": True,
        "capacity": 1,
        "available_from": "2027-01-01",
        **kw,
    }


def offer(oid: str = "O1", unit_id: str = "U1", supervisors: tuple[str, ...] = ("S1",), **kw: Any) -> dict[str, Any]:
    """A six-month physician PTJ starting 2027-03-01."""
    return {
        "id": oid,
        "unit_id": unit_id,
        "kind": "ptj",
        "profession": "physician",
        "specialty": "allmänmedicin",
        "min_cefr": "C1",
        "start": "2027-03-01",
        "months": 6,
        "slots": 1,
        "supervisor_ids": list(supervisors),
        "monthly_salary": 30000,
        "monthly_supervisor_fee": 4000,
        **kw,
    }


def candidate(cid: str = "C1", **kw: Any) -> dict[str, Any]:
    """A physician living in Stockholm, ready for PTJ with every ladder step done."""
    ladder = {
        "education_assessed": "2024-01-10",
        "language_proof": "2025-01-10",
        "theory_test": "2025-03-10",
        "practical_test": "2025-09-10",
        "regulations_course": "2025-10-10",
        "ptj_decision": "2026-01-10",
        "special_authorisation": "granted",
        **kw.pop("ladder", {}),
    }
    return {
        "id": cid,
        "profession": "physician",
        "ladder": ladder,
        "cefr": "C1",
        "language_proof": "svenska_3",
        "residence_county": "01",
        "residence_municipality": "0180",
        "specialty": "general practice",
        "available_from": "2027-01-01",
        "ready_since": "2026-02-01",
        "max_commute_km": 50,
        **kw,
    }


def programme(pid: str = "P1", **kw: Any) -> dict[str, Any]:
    """An open programme paying salary and supervisor fee in full, 1 MSEK."""
    return {
        "id": pid,
        "name": f"Programme {pid}",
        "funder": "Region Stockholm",
        "budget": 1_000_000,
        "window_start": "2027-01-01",
        "window_end": "2027-12-31",
        "spend_by": "2027-12-31",
        **kw,
    }


def instance_dict(
    candidates: list[dict[str, Any]] | None = None,
    offers: list[dict[str, Any]] | None = None,
    supervisors: list[dict[str, Any]] | None = None,
    units: list[dict[str, Any]] | None = None,
    programmes: list[dict[str, Any]] | None = None,
    **policy: Any,
) -> dict[str, Any]:
    """An instance as JSON-ready data; each list defaults to one object."""
    return {
        "round_date": ROUND.isoformat(),
        "candidates": candidates if candidates is not None else [candidate()],
        "units": units if units is not None else [unit()],
        "supervisors": supervisors if supervisors is not None else [supervisor()],
        "offers": offers if offers is not None else [offer()],
        "programmes": programmes if programmes is not None else [programme()],
        "policy": {"seed": 1, "deterministic": True, "time_limit_s": 10, **policy},
    }


def make(**kw: Any) -> Instance:
    """A checked instance (raises InvalidInstance when the data are wrong)."""
    from matching.input.validate import load_instance

    return load_instance(instance_dict(**kw))
