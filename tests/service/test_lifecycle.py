"""The life of a round through real HTTP: coordinator runs, adjusts and publishes; clinics answer."""

from __future__ import annotations

from tests.service.conftest import Service


def start(service: Service, key: str, body: dict, user: str = "coord01") -> dict:
    r = service.call(user, "POST", "/regions/01/rounds", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 202, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def test_round_lifecycle(service: Service) -> None:
    body = {"name": "januari", "round_date": "2027-01-15", "time_limit_s": 5, "seed": 1}
    created = start(service, "life-1", body)
    assert created["status"] == "queued" and created["job_id"] is not None
    done = service.wait_round("coord01", "01", created["id"])
    assert done["status"] == "solved", done
    assert done["result"]["placements"] == 2
    assert set(done["progress"]) >= {
        "objective",
        "bound",
        "gap",
        "gap_percent",
        "placements",
        "score",
        "elapsed",
    }

    proposals = service.call("coord01", "GET", f"/regions/01/rounds/{created['id']}/proposals").json()
    assert proposals["total"] == 2
    explanation = service.call("coord01", "GET", f"/regions/01/rounds/{created['id']}/explanation").json()
    assert explanation["programmes"][0]["granted"] == sum(p["grant"] for p in proposals["items"])
    assert {p["profession"] for p in explanation["professions"]} == {"physician"}
    why = service.call("coord01", "GET", f"/regions/01/rounds/{created['id']}/candidates/CAND-A/explanation").json()
    assert why["eligible_offers"] or why["excluded_offers"]
    assert why["match"] is not None or why["unmatched"] is not None

    # Before publication, clinics see nothing of the round.
    assert service.call("clinic_u1", "GET", f"/regions/01/rounds/{created['id']}/proposals").status_code == 404

    # The coordinator pins CAND-C to O2 and forbids CAND-A at O1, then re-runs.
    rerun = service.call(
        "coord01",
        "POST",
        f"/regions/01/rounds/{created['id']}/rerun",
        json={
            "pins": [{"candidate_id": "CAND-C", "offer_id": "O2"}],
            "forbids": [{"candidate_id": "CAND-A", "offer_id": "O1"}],
        },
        headers={"Idempotency-Key": "life-2"},
    )
    assert rerun.status_code == 202, rerun.text
    second = service.wait_round("coord01", "01", rerun.json()["id"])
    assert second["status"] == "solved", second
    pairs = {
        (p["candidate_ref"], p["offer_ref"])
        for p in service.call("coord01", "GET", f"/regions/01/rounds/{second['id']}/proposals").json()["items"]
    }
    assert ("CAND-C", "O2") in pairs and ("CAND-A", "O1") not in pairs

    published = service.call("coord01", "POST", f"/regions/01/rounds/{second['id']}/publish")
    assert published.status_code == 200 and published.json()["status"] == "published"
    assert service.call("coord01", "POST", f"/regions/01/rounds/{second['id']}/publish").status_code == 409

    # Each clinic sees only its own unit's proposals, and the candidates proposed to it (reduced view).
    mine = service.call("clinic_u2", "GET", f"/regions/01/rounds/{second['id']}/proposals").json()["items"]
    assert mine and all(p["offer_ref"] == "O2" for p in mine)
    theirs = service.call("clinic_u1", "GET", f"/regions/01/rounds/{second['id']}/proposals").json()["items"]
    assert all(p["offer_ref"] == "O1" for p in theirs)
    candidate = service.call("clinic_u2", "GET", f"/regions/01/candidates/{mine[0]['candidate_ref']}").json()
    assert "ladder" not in candidate and "residence_municipality" not in candidate
    other = [p for p in theirs if p["candidate_ref"] != mine[0]["candidate_ref"]]
    if other:
        assert (
            service.call("clinic_u2", "GET", f"/regions/01/candidates/{other[0]['candidate_ref']}").status_code == 404
        )

    # Clinic U1 cannot answer U2's proposal; U2 declines it; answering twice is a conflict.
    url = f"/regions/01/rounds/{second['id']}/proposals/{mine[0]['id']}"
    assert service.call("clinic_u1", "POST", url + "/accept").status_code == 404
    assert service.call("coord01", "POST", url + "/accept").status_code == 403
    free_text = service.call("clinic_u2", "POST", url + "/decline", json={"reason": "Anna was rude"})
    assert free_text.status_code == 422 and free_text.json()["errors"][0]["field"] == "reason"
    declined = service.call("clinic_u2", "POST", url + "/decline", json={"reason": "no_supervisor"})
    assert declined.status_code == 200 and declined.json()["answer"] == "declined"
    assert declined.json()["decline_reason"] == "no_supervisor"
    listed = service.call("coord01", "GET", f"/regions/01/rounds/{second['id']}/proposals").json()["items"]
    assert {p["id"]: p["decline_reason"] for p in listed}[mine[0]["id"]] == "no_supervisor"
    assert service.call("clinic_u2", "POST", url + "/accept").status_code == 409
    for p in theirs:
        r = service.call("clinic_u1", "POST", f"/regions/01/rounds/{second['id']}/proposals/{p['id']}/accept")
        assert r.status_code == 200

    # The decline is a forbid in the next round; accepted candidates are placed and leave the pool.
    third = start(service, "life-3", {"round_date": "2027-01-15", "time_limit_s": 5})
    snapshot = service.call("coord01", "GET", f"/regions/01/rounds/{third['id']}/snapshot").json()
    forbids = {(f["candidate_id"], f["offer_id"]) for f in snapshot["policy"]["forbids"]}
    assert (mine[0]["candidate_ref"], "O2") in forbids
    assert not {p["candidate_ref"] for p in theirs} & {c["id"] for c in snapshot["candidates"]}
    assert service.wait_round("coord01", "01", third["id"])["status"] == "solved"

    # Every write is audited (checked directly in the database).
    from sqlalchemy import select

    from models import AuditEvent
    from models.db import make_engine, make_sessionmaker

    engine = make_engine(service.url)
    with make_sessionmaker(engine)() as session:
        actions = set(session.scalars(select(AuditEvent.action)))
    engine.dispose()
    assert {"round.create", "round.solved", "round.publish", "proposal.declined", "proposal.accepted"} <= actions


def test_cancel_a_solving_round(service: Service) -> None:
    with service.solver_delay(30):
        created = start(service, "cancel-1", {"round_date": "2027-01-15", "time_limit_s": 5})
        r = service.call("coord01", "POST", f"/regions/01/rounds/{created['id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        job = service.call("coord01", "GET", f"/jobs/{created['job_id']}").json()
        assert job["status"] == "cancelled" and job["result"] is None
    assert service.call("coord01", "POST", f"/regions/01/rounds/{created['id']}/cancel").status_code == 409
    proposals = service.call("coord01", "GET", f"/regions/01/rounds/{created['id']}/proposals").json()
    assert proposals["total"] == 0


def test_the_worker_keeps_the_last_figures_through_reports_of_a_phase_alone() -> None:
    # The engine reports phases without figures (prepare, model, explain); the old heartbeat read every report's
    # objective and bound and failed on those.
    from api.core.settings import Settings
    from api.jobs.child import Heartbeat
    from models import SolverJob

    job = SolverJob(id=1, kind="round", round_id=1)
    beat = Heartbeat(None, job, 1, Settings(), None)  # type: ignore[arg-type]  # report() never touches the database
    beat.report({"phase": "prepare", "elapsed": 0.0})
    assert beat.progress == {"phase": "solving", "step": "prepare"}
    figures = {"phase": "tier 2 of 2: score", "placements": 3, "score": 950, "tier": "score", "objective": 950}
    beat.report({**figures, "bound": 1000, "gap": 0.05, "gap_percent": 5.0, "elapsed": 1.0})
    beat.report({"phase": "explain", "elapsed": 1.5})
    assert beat.progress["step"] == "explain" and beat.progress["placements"] == 3 and beat.progress["bound"] == 1000
