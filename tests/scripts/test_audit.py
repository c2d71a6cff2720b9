"""scripts/audit.py: `make audit` fails on an audit of nothing, and CI can tell an
unreachable vulnerability service from a pass."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "audit.py"
# pip-audit 2.10's report on this project behind a package index without PyPI's JSON
# API (the first five of 96 entries): every dependency skipped, exit 0.
ALL_SKIPPED = Path(__file__).with_name("pip-audit-all-skipped.json")


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
    )


def verdict_of(report: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    return audit("verdict", str(path))


def audited(name: str, version: str, *vulns: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "version": version, "vulns": list(vulns)}


def test_a_report_with_every_dependency_skipped_fails():
    res = audit("verdict", str(ALL_SKIPPED))
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        "error: audited 0 of 5 installed packages; 5 could not be looked up (first: "
        "Dependency not found on PyPI and could not be audited: aiohappyeyeballs (2.7.1))",
        "fix: run make audit where PyPI's JSON API answers "
        "(python scripts/audit.py reachable says whether it does here)",
    ]


def test_make_audit_fails_when_pip_audit_passes_an_audit_of_nothing():
    """What `make audit` runs, with pip-audit replaced by one that skipped everything,
    said "No known vulnerabilities found" and exited 0, as it did in CI."""
    fake = (
        "import sys; sys.stdout.write(open(sys.argv[1]).read()); "
        "print('No known vulnerabilities found', file=sys.stderr)"
    )
    res = audit("run", sys.executable, "-c", fake, str(ALL_SKIPPED))
    assert res.returncode == 1
    assert res.stderr.startswith("error: audited 0 of 5 installed packages")
    assert "No known vulnerabilities found" not in res.stdout + res.stderr


def test_make_audit_runs_the_check_not_bare_pip_audit():
    res = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "audit"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [".venv/bin/python", "scripts/audit.py", "run"]


def test_one_package_not_looked_up_fails(tmp_path: Path):
    report = {
        "dependencies": [
            audited("click", "8.1.8"),
            {"name": "private-wheel", "skip_reason": "Dependency not found on PyPI"},
        ]
    }
    res = verdict_of(report, tmp_path)
    assert res.returncode == 1
    assert "error: audited 1 of 2 installed packages; 1 could not be looked up" in res.stderr


def test_no_package_at_all_fails(tmp_path: Path):
    res = verdict_of({"dependencies": [], "fixes": []}, tmp_path)
    assert res.returncode == 1
    assert "audited 0 of 0 installed packages" in res.stderr
    assert "pip-audit found no installed package" in res.stderr


def test_a_known_vulnerability_fails_by_name(tmp_path: Path):
    vuln = {"id": "PYSEC-2019-217", "fix_versions": ["2.10.1"], "aliases": ["CVE-2019-10906"]}
    report = {"dependencies": [audited("jinja2", "2.10", vuln), audited("click", "8.1.8")]}
    res = verdict_of(report, tmp_path)
    assert res.returncode == 1
    assert res.stderr.splitlines()[:2] == [
        "jinja2 2.10: PYSEC-2019-217 (fixed in 2.10.1)",
        "error: 1 known vulnerability in the installed packages",
    ]


def test_a_complete_clean_audit_passes(tmp_path: Path):
    report = {"dependencies": [audited("click", "8.1.8"), audited("rich", "14.0.0")]}
    res = verdict_of(report, tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "audited 2 installed packages: no known vulnerabilities\n"


def test_pip_audit_without_a_report_fails_with_its_error():
    fake = "import sys; print('ConnectionError: api.osv.dev', file=sys.stderr); sys.exit(1)"
    res = audit("run", sys.executable, "-c", fake)
    assert res.returncode == 1
    assert res.stderr.startswith(
        "error: pip-audit wrote no report (exit 1): ConnectionError: api.osv.dev"
    )


class FakePyPI(BaseHTTPRequestHandler):
    """/json-api/<name>/<version>/json answers as PyPI does; /index-only/ as a package
    index without the JSON API (404); /portal/ with an HTML page."""

    def do_GET(self) -> None:
        root = self.path.split("/")[1]
        if root == "json-api":
            body, kind, status = json.dumps({"info": {}, "vulnerabilities": []}), "json", 200
        elif root == "portal":
            body, kind, status = "<html>sign in</html>", "html", 200
        else:
            body, kind, status = "", "plain", 404
        self.send_response(status)
        self.send_header("Content-Type", f"application/{kind}")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def pypi() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePyPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_service_that_answers_is_reachable(pypi: str):
    res = audit("reachable", "--url", f"{pypi}/json-api")
    assert res.returncode == 0 and res.stdout == "", res.stdout


@pytest.mark.parametrize(
    ("root", "says"),
    [
        ("index-only", "answers HTTP 404"),
        ("portal", "answers something other than JSON"),
    ],
)
def test_a_service_that_does_not_answer_is_one_line_and_exit_3(pypi: str, root: str, says: str):
    res = audit("reachable", "--url", f"{pypi}/{root}")
    assert res.returncode == 3
    lines = res.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("audit not run: the vulnerability service")
    assert says in lines[0]


def test_a_closed_port_is_unreachable():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    res = audit("reachable", "--url", f"http://127.0.0.1:{port}/pypi", "--timeout", "5")
    assert res.returncode == 3
    assert len(res.stdout.splitlines()) == 1 and "refused" in res.stdout.lower()
