"""Before class: ``--phones N`` fills the room with simulated phones that join and tap;
a stop without "Erase the room" deletes the embedded services' data with them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.moisson.classroom.conftest import request, start_classroom, stop_classroom

pytestmark = pytest.mark.integration


def test_simulated_phones_join_and_tap_and_a_stop_deletes_the_data(tmp_path: Path):
    session = start_classroom(tmp_path, "--phones", "3", "--citizens", "20")
    try:
        deadline = time.monotonic() + 60
        while True:
            _, room, _ = request(f"{session.local}/api/room/projector")
            versions = [st["version"] for st in room["students"]]
            if len(versions) == 3 and min(versions) >= 2:
                break
            assert time.monotonic() < deadline, room
            time.sleep(0.5)
        assert sorted(st["nickname"] for st in room["students"]) == [
            "Phone 1",
            "Phone 2",
            "Phone 3",
        ]
        assert room["feed"], "their taps are on the projector's feed"
    finally:
        log = stop_classroom(session)
    workdir = Path(re.search(r"logs in (\S+)", log).group(1))  # type: ignore[union-attr]
    assert "the room's data was deleted with its embedded services" in log
    assert not (workdir / "postgres").exists() and not (workdir / "kafka").exists()
