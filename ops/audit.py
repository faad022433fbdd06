"""Audit the locked dependencies for known vulnerabilities (pip-audit, PyPI's advisory data).

Exit 1 when any locked package has a known vulnerability; exit 0 when none has. When the advisory
service cannot be reached (this build machine reaches PyPI's package index but not its per-version JSON
API or OSV), most packages come back "not audited": that is said plainly, with how many, and the exit
is 0 unless ``--strict`` (a network that reaches PyPI should run with it).

    python ops/audit.py [--strict] [requirements.lock]
"""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    strict = "--strict" in sys.argv
    lock = args[0] if args else "requirements.lock"
    run = subprocess.run([sys.executable, "-m", "pip_audit", "-r", lock, "--no-deps", "--disable-pip",
                          "--progress-spinner", "off", "-f", "json"], capture_output=True, text=True)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit failed (exit {run.returncode}):\n{run.stderr[-2000:]}", file=sys.stderr)
        return 2
    deps = report["dependencies"]
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    for d in vulnerable:
        for v in d["vulns"]:
            fixes = ", ".join(v.get("fix_versions") or []) or "no fix yet"
            print(f"VULNERABLE {d['name']}=={d['version']}: {v['id']} ({fixes}) {v.get('description', '')[:160]}")
    audited = len(deps) - len(skipped)
    print(f"pip-audit of {lock}: {len(deps)} packages, {audited} audited, {len(vulnerable)} with known vulnerabilities, "
          f"{len(skipped)} not audited")
    if skipped and audited == 0:
        print("NOT AUDITED: the advisory service did not answer for any package (no route to PyPI's JSON API or "
              "OSV from here); run `make audit` where it is reachable")
    if vulnerable:
        return 1
    return 1 if strict and skipped else 0


if __name__ == "__main__":
    sys.exit(main())
