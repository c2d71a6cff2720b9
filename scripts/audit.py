#!/usr/bin/env python3
"""`make audit` that can fail, and whether it can run here at all.

pip-audit looks every installed release up in PyPI's JSON API
(https://pypi.org/pypi/<name>/<version>/json). A release it cannot look up is skipped,
and pip-audit still prints "No known vulnerabilities found" and exits 0, even when it
skipped every one: behind a mirror or proxy that serves the package index but not that
API, it audits nothing and passes. So:

    audit.py run          pip-audit, then fail unless every installed package was looked
                          up and none has a known vulnerability (what `make audit` runs)
    audit.py verdict F    the same judgement on the pip-audit JSON report F
    audit.py reachable    exit 0 when the vulnerability service answers, else exit 3
                          with one line saying so (what CI asks before `make audit`)

Standard library only: CI runs it before anything else is known to work.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.error
import urllib.request
from importlib import metadata
from typing import Any

PYPI_JSON = "https://pypi.org/pypi"
UNREACHABLE = 3
PIP_AUDIT = [sys.executable, "-m", "pip_audit", "--local", "--skip-editable"]
REPORT_ARGS = ["--progress-spinner", "off", "--format", "json"]
FIX = (
    "fix: run make audit where PyPI's JSON API answers "
    "(python scripts/audit.py reachable says whether it does here)"
)


def verdict(report: dict[str, Any]) -> tuple[int, list[str]]:
    """The exit status and the lines to print for a pip-audit JSON report: 1 when a
    package has a known vulnerability, when one was not looked up, or when none was."""
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if "skip_reason" in d]
    audited = [d for d in deps if "skip_reason" not in d]
    lines = [
        f"{d['name']} {d['version']}: {v['id']} "
        f"(fixed in {', '.join(v.get('fix_versions') or []) or 'no release yet'})"
        for d in audited
        for v in d.get("vulns") or []
    ]
    if lines:
        many = "y" if len(lines) == 1 else "ies"
        lines.append(f"error: {len(lines)} known vulnerabilit{many} in the installed packages")
        lines.append("fix: raise their lower bounds in pyproject.toml, then make lock")
    if skipped or not audited:
        why = skipped[0]["skip_reason"] if skipped else "pip-audit found no installed package"
        lines.append(
            f"error: audited {len(audited)} of {len(deps)} installed packages; "
            f"{len(skipped)} could not be looked up (first: {why})"
        )
        lines.append(FIX)
    if lines:
        return 1, lines
    return 0, [f"audited {len(audited)} installed packages: no known vulnerabilities"]


def run(command: list[str]) -> tuple[int, list[str]]:
    """Run pip-audit (``command``, which writes its JSON report to stdout) and judge it.
    Its own summary is not shown: it says "No known vulnerabilities found" even when it
    looked nothing up."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        said = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return 1, [f"error: pip-audit wrote no report (exit {done.returncode}): {said[0]}", FIX]
    return verdict(report)


def probe() -> tuple[str, str]:
    """An installed release that PyPI surely has: pip-audit's own, else pip's."""
    for name in ("pip-audit", "pip"):
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "pip", "24.0"


def unreachable(base: str, timeout: float) -> str | None:
    """None when ``base`` answers for a release as PyPI's JSON API does, else why not."""
    name, version = probe()
    url = f"{base.rstrip('/')}/{name}/{version}/json"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as exc:
        return f"{url} answers HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {getattr(exc, 'reason', exc)}"
    except ValueError:
        return f"{url} answers something other than JSON"
    if not isinstance(body, dict) or "info" not in body:
        return f"{url} answers JSON without a release's info"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    runs = sub.add_parser("run", help="run pip-audit and judge its report")
    runs.add_argument(
        "pip_audit",
        nargs=argparse.REMAINDER,
        help="the command printing a pip-audit JSON report (default: pip-audit of this "
        "environment, editable installs aside)",
    )
    judge = sub.add_parser("verdict", help="judge a pip-audit JSON report")
    judge.add_argument("report")
    reach = sub.add_parser("reachable", help="exit 0 if the vulnerability service answers")
    reach.add_argument("--url", default=PYPI_JSON, help="the JSON API's root (tests)")
    reach.add_argument("--timeout", type=float, default=15.0)
    args = parser.parse_args(argv)
    if args.command == "reachable":
        why = unreachable(args.url, args.timeout)
        if why is None:
            return 0
        print(f"audit not run: the vulnerability service is unreachable here ({why})")
        return UNREACHABLE
    if args.command == "verdict":
        with open(args.report, encoding="utf-8") as f:
            status, lines = verdict(json.load(f))
    else:
        status, lines = run(args.pip_audit or [*PIP_AUDIT, *REPORT_ARGS])
    for line in lines:
        print(line, file=sys.stderr if status else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main())
