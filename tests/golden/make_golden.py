"""Regenerate the golden recording and its expected profiles (after a rules change).

.venv/bin/python tests/golden/make_golden.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from moisson.ops.recording import open_recording, write_simulation
from moisson.ops.verify import expected_doubles
from moisson.settings import SENSOR_KINDS
from processors.core.oracle import Oracle
from producers.city import generate_events

HERE = Path(__file__).parent
RECORDING = HERE / "recording"
EXPECTED = HERE / "expected_profiles.json"
#: A calibrated week blacklists about 1% of a crowd, so the golden city is a small crowd
#: around Lulu's week: Mei and Lulu are blacklisted, and Lulu is refused at the gate.
ARGS = {"seed": 11, "citizens": 60, "days": 7, "scenario": "lulu"}
PARTITIONS = 4
SUMMARY = (
    "version",
    "score",
    "tier",
    "blacklisted",
    "metro_count",
    "payment_count",
    "book_count",
    "camera_count",
    "denied_count",
)


def simulate(out: Path) -> dict:
    events = generate_events(
        ARGS["seed"],
        ARGS["citizens"],
        days=ARGS["days"],
        sanctions=Oracle(),
        scenario=ARGS["scenario"],
    )
    return write_simulation(
        out, events, PARTITIONS, dict(ARGS), {k: f"sensors.{k}" for k in SENSOR_KINDS}
    )


def profiles(recording: Path) -> dict:
    doubles = expected_doubles(open_recording(recording))
    return {
        cid: {
            **{f: d[f] for f in SUMMARY},
            "ledger_entries": len(d["ledger"]),
            "blacklist_periods": len(d["blacklist"]),
        }
        for cid, d in sorted(doubles.items())
    }


if __name__ == "__main__":
    shutil.rmtree(RECORDING, ignore_errors=True)
    simulate(RECORDING)
    EXPECTED.write_text(json.dumps(profiles(RECORDING), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {RECORDING} and {EXPECTED}")
