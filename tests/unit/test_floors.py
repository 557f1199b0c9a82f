"""The dependency-floor check: a floor below a fixed version with a published advisory fails hack/test."""

from __future__ import annotations

import json

from check_floors import REPO, floors, shortfalls

ADVISORIES = [
    {"package": "aiohttp", "fixed": "3.13.4", "ids": ["CVE-A"]},
    {"package": "PyJWT", "fixed": "2.12.0", "ids": ["CVE-B"]},
    {"package": "not-a-dependency", "fixed": "1.0", "ids": ["CVE-C"]},
]


def pyproject(*dependencies: str) -> str:
    listed = ", ".join(f'"{d}"' for d in dependencies)
    return f'[project]\nname = "x"\ndependencies = [{listed}]\n'


def test_a_floor_below_a_fix_is_reported_and_one_at_or_above_is_not() -> None:
    found = shortfalls(pyproject("aiohttp>=3.11", "pyjwt>=2.12.0"), ADVISORIES)
    assert [(s.package, s.needed, s.ids) for s in found] == [("aiohttp", "3.13.4", ("CVE-A",))]
    assert shortfalls(pyproject("aiohttp>=3.13.4", "pyjwt>=2.13"), ADVISORIES) == []


def test_no_floor_at_all_is_reported() -> None:
    found = shortfalls(pyproject("aiohttp", "pyjwt>=3"), ADVISORIES)
    assert [str(s) for s in found] == ["aiohttp: no floor allows versions before 3.13.4 (CVE-A)"]


def test_names_are_compared_normalized() -> None:
    assert floors(pyproject("PyJWT>=2.13.0", "argon2_cffi>=23.1")) == {"pyjwt": "2.13.0", "argon2-cffi": "23.1"}


def test_credops_own_floors_are_clear_of_every_advisory_in_the_table() -> None:
    table = json.loads((REPO / "hack" / "advisories.json").read_text())["advisories"]
    assert {row["package"] for row in table} >= {"aiohttp", "pyjwt", "cryptography"}
    assert shortfalls((REPO / "pyproject.toml").read_text(), table) == []
