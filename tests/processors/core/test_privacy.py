"""Ethics toggles: minimisation drops sensor kinds, pseudonymisation hides ids."""

from __future__ import annotations

from processors.core.fold import Event, fold_all
from processors.core.oracle import Oracle
from processors.core.privacy import Privacy
from processors.core.validation import Rejection, apply_message
from producers.city import generate_events
from tests.factories import ev


def test_pseudonyms_are_keyed_stable_and_cover_companions():
    p = Privacy.of(None, "k1")
    assert p.pseudonym("c0000001") == p.pseudonym("c0000001") != "c0000001"
    assert Privacy.of(None, "k2").pseudonym("c0000001") != p.pseudonym("c0000001")
    e = ev("camera", companions=["c2", "c3"], companions_blacklisted=["c3"])
    seen = p.apply(e.record)
    assert seen["citizen_id"].startswith("p-") and "c2" not in seen["companions"]
    assert seen["companions_blacklisted"] == [p.pseudonym("c3")]
    assert e.record["citizen_id"] == "c0000001", "the input is not changed"


def test_the_pipeline_step_pseudonymises_and_minimises():
    events = list(generate_events(3, 30, 400, sanctions=Oracle()))
    privacy = Privacy.of(["metro", "camera"], "secret")
    doubles: dict = {}
    for e in events:
        out = apply_message(
            doubles.get(privacy.pseudonym(e.citizen_id)),
            expected_kind=e.kind,
            topic=f"sensors.{e.kind}",
            key=e.citizen_id.encode(),
            value=e.encode(),
            privacy=privacy,
        )
        if e.kind in ("payment", "book"):
            assert out.rejected is Rejection.NOT_HARVESTED
        elif out.double is not None:
            doubles[out.double["citizen_id"]] = out.double
    assert doubles and all(cid.startswith("p-") for cid in doubles)
    assert all(d["payment_count"] == d["book_count"] == 0 for d in doubles.values())
    expected = fold_all(
        Event(e.kind, privacy.apply(e.record)) for e in events if privacy.harvests(e.kind)
    )
    assert doubles == expected


def test_the_oracle_folds_under_the_same_toggles():
    """The demo's oracle: what the harvester must hold when it minimises and pseudonymises."""
    events = list(generate_events(3, 30, 400, sanctions=Oracle()))
    privacy = Privacy.of(["metro", "camera"], "secret")
    oracle = Oracle(privacy=privacy)
    got = oracle.observe_all(events)
    assert got == fold_all(
        Event(e.kind, privacy.apply(e.record)) for e in events if privacy.harvests(e.kind)
    )
    for cid in {e.citizen_id for e in events}:
        double = got.get(privacy.pseudonym(cid))
        assert oracle.is_blacklisted(cid) == bool(double and double["blacklisted"])
