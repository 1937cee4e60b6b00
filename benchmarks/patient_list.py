"""The clinician's patient list at clinic scale (issue 17).

A database of 10,000 patients (SQLite in a temporary directory, each with a COWS), then in-process
requests (FastAPI's TestClient, signed in through the login form) for the first, a middle and the
last page of ``/app/patients``: 50 patients a page, read from their stored summaries, each read
audited. The time is the request's wall time in the same process, so it is the server's time plus
the test client's own overhead (an upper bound on server time); the process's CPU time for the request
is printed too, as on a shared, loaded machine the wall time's tail is mostly waiting for a core.

Baseline, measured in the same run on the same database: the list as it was before, which
re-assessed every listed patient on each load (verdict, latest COWS and the monitoring alerts for
up to 500 patients), timed for its assessment work alone (no rendering: a lower bound on its cost).

Run: .venv/bin/python benchmarks/patient_list.py [--patients 10000] [--runs 30]
Target (issue 17): a page of a 10,000-patient list in under 100 ms of server time.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

PASSWORD = "benchmark-clinician-pass-1"


def _variants(n: int) -> list[dict[str, Any]]:
    """A few kinds of patient, repeated: none, an MAOI, an SSRI, epilepsy, renal impairment, an older adult."""
    kinds: list[dict[str, Any]] = [
        {},
        {"medications": [{"name": "phenelzine"}]},
        {"medications": [{"name": "fluoxetine"}]},
        {"conditions": ["epilepsy"]},
        {"creatinine_clearance_ml_min": 20},
        {"age_years": 80},
    ]
    out = []
    for i in range(n):
        data = {"age_years": 20 + i % 50, "sex": "female" if i % 2 else "male",
                "opioid": {"substance": "heroin", "hours_since_last_use": 12 + i % 30}}
        data.update(kinds[i % len(kinds)])
        out.append(data)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()

    from fastapi.testclient import TestClient
    from sqlalchemy import func, insert, select

    from withdrawal.app import create_app
    from withdrawal.knowledge.loader import default_kb
    from withdrawal.scales import score
    from withdrawal.service import records, summaries
    from withdrawal.service.config import Settings
    from withdrawal.service.demo import seed
    from withdrawal.service.models import Patient, PatientSummary, ScaleAssessment, User, utcnow

    kb = default_kb()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(environment="test", data_dir=Path(tmp), demo_clinician_password=PASSWORD,
                            demo_patient_password="benchmark-patient-pass-1")
        app = create_app(settings, kb=kb)
        seed(app.state.sessions, settings, kb)
        thresholds = settings.thresholds()
        cows_items = {item.id: item.allowed_scores[1] for item in kb.scales["cows"].items}
        cows = score(cows_items, kb.scales["cows"])

        t0 = time.perf_counter()
        with app.state.sessions() as s:
            clinician = s.scalar(select(User).where(User.role == "clinician"))
            assert clinician is not None
            now = utcnow()
            start = (s.scalar(select(func.max(Patient.id))) or 0) + 1
            datas = _variants(args.patients)
            s.execute(insert(Patient), [
                {"id": start + i, "display_name": f"Patient {i:05d}", "data": d, "created_by": clinician.id,
                 "created_at": now, "updated_at": now} for i, d in enumerate(datas)])
            s.execute(insert(ScaleAssessment), [
                {"patient_id": start + i, "scale": "cows", "total": cows.total, "band": cows.band,
                 "items": dict(cows.items), "recorded_at": now, "recorded_by": clinician.id,
                 "kb_version": kb.version, "software_version": "bench", "created_at": now}
                for i in range(args.patients)])
            # the summaries as the record hooks write them: computed for each kind of patient once, then copied
            computed: dict[int, dict[str, Any]] = {}
            for k in range(min(6, args.patients)):
                p = s.get(Patient, start + k)
                assert p is not None
                computed[k] = summaries.compute(s, p, kb, thresholds, now)
            s.execute(insert(PatientSummary), [
                {"patient_id": start + i, **computed[i % 6]} for i in range(args.patients)])
            s.commit()
            total = s.scalar(select(func.count()).select_from(Patient)) or 0
        print(f"patients in the database: {total} (set up in {time.perf_counter() - t0:.1f} s)")

        # baseline: the old list, every listed patient re-assessed (at most 500), assessment work only
        def old_list() -> int:
            with app.state.sessions() as s:
                n = 0
                for p in s.scalars(select(Patient).order_by(Patient.display_name, Patient.id).limit(500)):
                    records.latest_cows(s, p.id)
                    try:
                        records.assess_record(s, p, kb)
                        records.alerts(session=s, patient=p, kb=kb, thresholds=thresholds, now=utcnow())
                    except Exception:  # noqa: BLE001, S110 (as the old page: a record that cannot be assessed)
                        pass
                    n += 1
                return n

        base_times = []
        for _ in range(3):
            t0 = time.perf_counter()
            listed = old_list()
            base_times.append(time.perf_counter() - t0)
        base = statistics.median(base_times)
        print(f"baseline, old list (re-assess {listed} patients, no rendering): {base * 1000:8.1f} ms a load")

        with TestClient(app) as client:
            page = client.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert token
            r = client.post("/login", data={"csrf": token.group(1), "username": settings.demo_clinician_username,
                                            "password": PASSWORD}, follow_redirects=False)
            assert r.status_code == 303, r.text[:200]
            pages = -(-total // 50)
            for label, number in (("first", 1), ("middle", pages // 2), ("last", pages)):
                times, cpu = [], []
                for _ in range(args.runs):
                    t0, c0 = time.perf_counter(), time.process_time()
                    r = client.get("/app/patients", params={"page": str(number)})
                    times.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                    assert r.status_code == 200 and f"page {number} of {pages}" in r.text
                med, p95 = statistics.median(times), sorted(times)[int(0.95 * (len(times) - 1))]
                print(f"new list, {label:6s} page ({number:3d} of {pages}), 50 patients: median {med * 1000:6.1f} ms, "
                      f"p95 {p95 * 1000:6.1f} ms, CPU median {statistics.median(cpu) * 1000:5.1f} ms "
                      f"(target 100 ms; {base / med:.0f}x faster than the baseline)")


if __name__ == "__main__":
    main()
