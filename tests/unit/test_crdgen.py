"""The CRDs are generated from the models, and the checked-in copies match them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from credop.api import KINDS
from credop.api.crdgen import all_crds, drifted, targets

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {"$ref", "$defs", "anyOf", "allOf", "oneOf", "title", "examples", "const"}


def walk(node: Any, path: str = "") -> list[tuple[str, str, Any]]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((path, key, value))
            found += walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += walk(value, f"{path}[{index}]")
    return found


def test_checked_in_crds_match_the_models() -> None:
    assert drifted(REPO) == [], "run: python -m credop.api.crdgen"


def test_drift_is_detected(tmp_path: Path) -> None:
    for path, text in targets(tmp_path).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert drifted(tmp_path) == []
    victim = next(iter(targets(tmp_path)))
    victim.write_text(victim.read_text().replace("maxLength: 253", "maxLength: 254", 1))
    assert drifted(tmp_path) == [victim]


def test_schemas_are_structural() -> None:
    for crd in all_crds():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, key, value in walk(schema):
            assert key not in FORBIDDEN or path.endswith(".properties"), f"{path}.{key}"
            if key == "additionalProperties" and not path.endswith(".properties"):
                assert isinstance(value, dict), f"{path}: additionalProperties must be a schema"
        status = schema["properties"]["status"]
        assert not [k for _, k, _ in walk(status) if k == "default"], "status must carry no defaults"


def test_every_field_is_described() -> None:
    for crd in all_crds():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for part in ("spec", "status"):
            for path, key, value in walk(schema["properties"][part]):
                if key == "properties":
                    for name, child in value.items():
                        assert child.get("description"), (
                            f"{crd['metadata']['name']} {part}{path}.{name} has no description"
                        )


def test_names_short_names_and_category() -> None:
    names = {crd["spec"]["names"]["kind"]: crd["spec"]["names"] for crd in all_crds()}
    assert {kind.kind for kind in KINDS} == set(names)
    assert names["ServiceAccountKey"]["shortNames"] == ["sak"]
    assert names["ApiClient"]["shortNames"] == ["apic"]
    assert names["KeyPolicy"]["shortNames"] == ["kpol"]
    assert all(n["categories"] == ["credentials"] for n in names.values())


def test_printer_columns() -> None:
    columns = {
        crd["spec"]["names"]["kind"]: [
            c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"] if "priority" not in c
        ]
        for crd in all_crds()
    }
    assert columns["ServiceAccountKey"] == ["Access-Key", "Phase", "Expires", "Last-Used", "Age"]
    assert columns["ApiClient"] == ["Client-ID", "Permission", "Token-Validity", "Phase", "Last-Used", "Age"]
