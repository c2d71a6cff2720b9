"""Bounded state: a long, skewed, late stream planned in batches with eviction ends on
exactly what the oracle (no eviction) computes, and the state stays bounded."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta

import pytest

from processors.core.fold import default_rules, explained_ledger
from processors.core.held import HELD
from processors.core.horizon import Horizon
from processors.core.planning import Folding, Incoming, Position, plan_batch
from schemas.codec import SENSOR_SCHEMAS, encode
from sinks.postgres.tables import PROFILE_FIELDS
from tests.factories import ev

TOPIC = {k: f"sensors.{k}" for k in SENSOR_SCHEMAS}
RULES = default_rules()
HORIZON = Horizon.of(RULES)  # lateness = the longest window: 7 days
FOLDING = Folding(kinds={t: k for k, t in TOPIC.items()}, rules=RULES, horizon=HORIZON)
#: The same rules on a scale too wide to clamp: scores dive deep, so periods stay open
#: for weeks and get sealed open into checkpoints.
UNCLAMPED = dataclasses.replace(
    FOLDING, rules=dataclasses.replace(RULES, score_min=-(10**6), score_max=10**6)
)
#: Per kind, what a citizen does in a bad stretch and in a good one: scores fall under
#: the threshold and climb back, so periods open, lift and get sealed into checkpoints.
BAD = {
    "metro": [{}, {"ticket": "NONE"}, {"outcome": "DENIED"}],
    "payment": [{}, {"category": "FINES"}, {"category": "GAMING"}],
    "book": [{}, {"category": "BANNED"}, {"category": "SENSITIVE"}],
    "camera": [{}, {"behaviour": "GATHERING"}, {"behaviour": "JAYWALKING"}],
}
GOOD = {
    "metro": [{}],
    "payment": [{"category": "CHARITY"}, {"category": "BABY"}],
    "book": [{}],
    "camera": [{"behaviour": "VOLUNTEERING"}, {"behaviour": "HELPING_ELDERLY"}],
}
CITIZENS = ("c0000001", "c0000002", "c0000003")


def stream(rng: random.Random, days: int, per_day: int) -> dict[str, list]:
    """Per topic, events in arrival order: mostly in time order, some late within the
    lateness, a few far too late, a few genuine duplicates."""
    out: dict[str, list] = {}
    for kind in BAD:
        events = []
        for i in range(days * per_day // len(BAD)):
            hours = i * 24 / (per_day / len(BAD)) + rng.uniform(0, 2)
            fields = rng.choice((BAD if (hours // 24) % 20 < 4 else GOOD)[kind])
            if kind == "payment" and (hours // 24) % 20 < 4 and rng.random() < 0.1:  # at night
                fields = {"category": "GAMING"}
                hours = (hours // 24) * 24 + 19.5
            events.append(ev(kind, hours=hours, citizen=rng.choice(CITIZENS), **fields))
        arrived = []
        for e in events:
            r = rng.random()
            if r < 0.05:  # late, within the lateness: shifted up to 3 days later
                arrived.insert(min(len(arrived), len(arrived) + rng.randint(0, 30)), e)
            elif r < 0.06 and arrived:
                arrived.append(arrived[rng.randrange(max(0, len(arrived) - 40), len(arrived))])
            else:
                arrived.append(e)
        for j in range(0, len(arrived), 97):  # far too late: a month-old event again
            if j > 400:
                old = arrived[j - 400]
                late = ev(old.kind, hours=0.5, citizen=old.citizen_id)
                arrived.insert(j, late)
        out[kind] = arrived
    return out


def interleave(rng: random.Random, per_topic: dict[str, list]) -> list[Incoming]:
    """One arrival order across topics, skewed: a topic may run days ahead in chunks."""
    cursors = dict.fromkeys(per_topic, 0)
    out: list[Incoming] = []
    while any(cursors[k] < len(v) for k, v in per_topic.items()):
        kind = rng.choice([k for k, v in per_topic.items() if cursors[k] < len(v)])
        for _ in range(rng.choice((1, 1, 5, 60))):
            if cursors[kind] >= len(per_topic[kind]):
                break
            e = per_topic[kind][cursors[kind]]
            value = encode(SENSOR_SCHEMAS[e.kind], e.record)
            out.append(Incoming(TOPIC[kind], 0, cursors[kind], e.citizen_id.encode(), value))
            cursors[kind] += 1
    return out


class FakeSink:
    """What the sink would hold: profiles, ledger rows, periods (by version)."""

    def __init__(self) -> None:
        self.profiles: dict[str, dict] = {}
        self.ledger: dict[tuple[str, str], dict] = {}
        self.periods: dict[tuple[str, object], dict] = {}

    def take(self, plan) -> None:
        for c, (d, _) in [*plan.doubles.items(), *plan.republish.items()]:
            if c not in self.profiles or self.profiles[c]["version"] < d["version"]:
                self.profiles[c] = {f: d[f] for f in PROFILE_FIELDS}
        for c, e, _ in plan.ledger:
            self.ledger.setdefault((e["event_id"], e["rule_id"]), {"citizen_id": c, **e})
        for c, u in plan.blacklist:
            key = (c, u["entered_at"])
            held = self.periods.get(key)
            if held is not None and held["double_version"] > u["double_version"]:
                continue
            if u["removed"]:
                self.periods.pop(key, None)
            else:
                self.periods[key] = u

    def period_states(self) -> dict:
        """The periods without the version that wrote them (batches differ in that)."""
        return {
            k: {f: v for f, v in u.items() if f != "double_version"}
            for k, u in self.periods.items()
        }


def run(batch: list[Incoming], rng: random.Random, folding: Folding):
    """Plan in random batches, the durable watermarks one batch behind."""
    stored: dict[str, dict] = {}
    stands: dict = {}
    durable: dict = {}
    sink = FakeSink()
    rejected: dict[str, int] = {}
    biggest = 0
    i = 0
    while i < len(batch):
        size = rng.randint(1, 120)
        chunk = batch[i : i + size]
        i += size

        def floor(partition: int, durable: dict = durable):
            wms = [durable.get((t, partition)) for t in TOPIC.values()]
            return None if any(w is None for w in wms) else min(wms)

        plan = plan_batch(
            chunk,
            lambda src: stands.get(src, Position()),
            lambda c, _i: stored.get(c),
            folding,
            floors=floor,
        )
        durable = {src: p.watermark for src, p in stands.items()}
        for c, (d, _) in [*plan.doubles.items(), *plan.republish.items()]:
            stored[c] = d
            biggest = max(biggest, len(d["recent_events"]) // HELD)
        for src, (p, _) in plan.positions.items():
            stands[src] = p
        for reason, n in plan.rejections.items():
            rejected[reason] = rejected.get(reason, 0) + n
        sink.take(plan)
    return sink, stored, rejected, biggest


def oracle(batch: list[Incoming], folding: Folding = FOLDING):
    plan = plan_batch(batch, lambda _s: Position(), lambda c, _i: None, folding)
    sink = FakeSink()
    sink.take(plan)
    return sink, {c: d for c, (d, _) in plan.doubles.items()}, dict(plan.rejections)


@pytest.mark.parametrize("folding", [FOLDING, UNCLAMPED], ids=["clamped", "unclamped"])
def test_eviction_changes_no_result_on_a_long_skewed_late_stream(folding: Folding):
    rng = random.Random(3)
    per_topic = stream(rng, days=120, per_day=40)
    arrival = interleave(rng, per_topic)
    got, stored, rejected, biggest = run(arrival, rng, folding)
    want, doubles, want_rejected = oracle(arrival, folding)

    assert rejected == want_rejected
    assert rejected.get("too-late", 0) > 0 and rejected.get("duplicate", 0) > 0
    assert got.profiles == want.profiles
    assert got.ledger == want.ledger
    assert got.period_states() == want.period_states()
    assert len(want.periods) >= 10, "the stream must open and close blacklist periods"
    # Bounded: the stored doubles hold far fewer events than their history...
    cps = [d["checkpoint"] for d in stored.values()]
    assert all(cp is not None for cp in cps)
    assert any(cp["last_lifted"] for cp in cps)
    if folding is UNCLAMPED:
        assert any(cp["open"] for cp in cps)
    else:  # the clamp is hit at both ends, so checkpoints hold clamped walks
        scale = (folding.rules.score_min, folding.rules.score_max)
        walked = {r["score_after"] for d in doubles.values() for r in explained_ledger(d)}
        assert set(scale) <= walked, walked
    held = {c: len(d["recent_events"]) // HELD for c, d in stored.items()}
    assert all(held[c] < d["version"] / 3 for c, d in stored.items()), held
    # ...and the oracle's doubles (nothing evicted) hold them all.
    assert all(len(d["recent_events"]) // HELD == d["version"] for d in doubles.values())
    assert biggest < 1000


def test_an_event_later_than_the_lateness_is_dead_lettered_and_changes_nothing():
    fresh = ev("camera", hours=24 * 30, behaviour="GATHERING")
    late = ev("camera", hours=24 * 30 - 7 * 24 - 1, behaviour="GATHERING")
    within = ev("camera", hours=24 * 30 - 7 * 24 + 1, behaviour="GATHERING")
    msgs = [
        Incoming(
            TOPIC["camera"], 0, i, e.citizen_id.encode(), encode(SENSOR_SCHEMAS["camera"], e.record)
        )
        for i, e in enumerate((fresh, late, within))
    ]
    plan = plan_batch(msgs, lambda _s: Position(), lambda c, _i: None, FOLDING)
    assert [d.reason for d in plan.dead_letters] == ["too-late"]
    assert plan.dead_letters[0].index == 1
    assert plan.doubles["c0000001"][0]["version"] == 2  # fresh and within, not late
    pos, _ = plan.positions[(TOPIC["camera"], 0)]
    assert pos.next == 3 and pos.watermark == fresh.record["occurred_at"]
    # Another partition has its own watermark: there the same event is on time.
    other = Incoming(TOPIC["camera"], 1, 0, b"c0000001", msgs[1].value)
    assert not plan_batch([other], lambda _s: Position(), lambda c, _i: None, FOLDING).dead_letters


def test_the_watermark_is_resumed_from_the_stored_position():
    late = ev("metro", hours=0)
    stands = Position(5, late.record["occurred_at"] + timedelta(days=8))
    msg = Incoming(TOPIC["metro"], 0, 5, b"c0000001", encode(SENSOR_SCHEMAS["metro"], late.record))
    plan = plan_batch([msg], lambda _s: stands, lambda c, _i: None, FOLDING)
    assert [d.reason for d in plan.dead_letters] == ["too-late"] and not plan.doubles
    assert plan.positions[(TOPIC["metro"], 0)][0] == Position(6, stands.watermark)
