"""Fail when a dependency floor in pyproject.toml is below a version that fixes a published advisory.

The advisories are a small table kept by hand (``hack/advisories.json``): a
floor that lets pip install a known-vulnerable version is a defect even when
today's resolver happens to pick a newer one (a user's lock file, a mirror, a
distribution package may not).
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Shortfall:
    package: str
    floor: str | None
    needed: str
    ids: tuple[str, ...]

    def __str__(self) -> str:
        floor = f">={self.floor}" if self.floor else "no floor"
        return f"{self.package}: {floor} allows versions before {self.needed} ({', '.join(self.ids)})"


def floors(pyproject: str) -> dict[str, str | None]:
    """Each runtime dependency's lower bound (``None``: unbounded below), by normalized name."""
    found: dict[str, str | None] = {}
    for line in tomllib.loads(pyproject)["project"]["dependencies"]:
        requirement = Requirement(line)
        lows = [spec.version for spec in requirement.specifier if spec.operator in (">=", "==", "~=", ">")]
        found[_normalized(requirement.name)] = max(lows, key=Version) if lows else None
    return found


def shortfalls(pyproject: str, advisories: list[dict[str, object]]) -> list[Shortfall]:
    known = floors(pyproject)
    found = []
    for advisory in advisories:
        package = _normalized(str(advisory["package"]))
        if package not in known:
            continue
        floor, fixed = known[package], str(advisory["fixed"])
        if floor is None or Version(floor) < Version(fixed):
            found.append(Shortfall(package, floor, fixed, tuple(str(i) for i in advisory["ids"])))  # type: ignore[attr-defined]
    return found


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> int:
    pyproject = (REPO / "pyproject.toml").read_text()
    advisories = json.loads((REPO / "hack" / "advisories.json").read_text())["advisories"]
    problems = shortfalls(pyproject, advisories)
    for problem in problems:
        print(f"dependency floor below a published advisory: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
