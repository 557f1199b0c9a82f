"""Generate structural CustomResourceDefinitions from the pydantic models.

pydantic's JSON Schema is close to what the API server wants; this module
closes the gap: ``$ref`` inlined, ``anyOf [X, null]`` turned into ``nullable``,
keywords Kubernetes refuses (``title``, ``examples``, ``additionalProperties:
false``, ``const``) dropped or rewritten, and defaults kept for specs only.

``python -m credop.api.crdgen`` writes ``crds/`` and the Helm chart's copy;
``--check`` fails when they differ from the models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from credop import GROUP, VERSION
from credop.api import KINDS, Kind

CATEGORY = "credentials"
_DROPPED_KEYWORDS = {"title", "examples"}

JsonSchema = dict[str, Any]


def crd_for(kind: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    spec_schema = structural(kind.spec.model_json_schema(by_alias=True, mode="validation"), keep_defaults=True)
    status_schema = structural(kind.status.model_json_schema(by_alias=True, mode="validation"), keep_defaults=False)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "credop", "app.kubernetes.io/part-of": "credop"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": [kind.short_name],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [_column(column) for column in kind.columns],
                    **(
                        {"selectableFields": [{"jsonPath": path} for path in kind.selectable_fields]}
                        if kind.selectable_fields
                        else {}
                    ),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": kind.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "credop.dev/v1alpha1"},
                                "kind": {"type": "string", "description": kind.kind},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def _column(column: Any) -> dict[str, Any]:
    rendered = {"name": column.name, "type": column.type, "jsonPath": column.json_path}
    if column.description:
        rendered["description"] = column.description
    if column.priority:
        rendered["priority"] = column.priority
    return rendered


def structural(schema: JsonSchema, *, keep_defaults: bool) -> JsonSchema:
    """A pydantic model schema turned into a Kubernetes structural schema."""
    definitions = schema.get("$defs", {})
    return _convert(schema, definitions, keep_defaults=keep_defaults)


def _convert(node: JsonSchema, definitions: JsonSchema, *, keep_defaults: bool) -> JsonSchema:
    node = _inline_reference(node, definitions)
    node = _collapse_nullable(node, definitions)
    out: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS or key == "$defs":
            continue
        if key == "default" and (not keep_defaults or value is None or value == [] or value == {}):
            continue
        if key == "properties":
            out[key] = {
                name: _convert(child, definitions, keep_defaults=keep_defaults) for name, child in value.items()
            }
        elif key == "items" or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _convert(value, definitions, keep_defaults=keep_defaults)
        elif key == "additionalProperties" and value is False:
            continue
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    return out


def _inline_reference(node: JsonSchema, definitions: JsonSchema) -> JsonSchema:
    if "$ref" not in node:
        return node
    target = definitions[node["$ref"].rsplit("/", 1)[-1]]
    merged = {**target, **{key: value for key, value in node.items() if key != "$ref"}}
    return _inline_reference(merged, definitions)


def _collapse_nullable(node: JsonSchema, definitions: JsonSchema) -> JsonSchema:
    """``anyOf: [X, {type: null}]`` → X with ``nullable: true`` (and the outer keywords kept)."""
    variants = node.get("anyOf")
    if not variants:
        return node
    others = [variant for variant in variants if variant.get("type") != "null"]
    if len(others) != 1:
        raise ValueError(f"cannot express anyOf {variants} in a structural schema")
    outer = {key: value for key, value in node.items() if key != "anyOf"}
    inner = _inline_reference(others[0], definitions)
    return {**inner, **outer, "nullable": True}


def all_crds() -> list[dict[str, Any]]:
    return [crd_for(kind) for kind in KINDS]


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a schema shared by several fields out in full at each (no YAML anchors in a CRD)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(crd: dict[str, Any]) -> str:
    header = "# Generated from operator/credop/api by `python -m credop.api.crdgen`. Do not edit.\n"
    return header + yaml.dump(crd, Dumper=_NoAliasDumper, sort_keys=False, width=120)


def targets(root: Path) -> dict[Path, str]:
    """Every generated file and its expected content."""
    files: dict[Path, str] = {}
    for crd in all_crds():
        name = f"{crd['spec']['group']}_{crd['spec']['names']['plural']}.yaml"
        text = render(crd)
        files[root / "crds" / name] = text
        files[root / "charts" / "credop" / "crds" / name] = text
    return files


def drifted(root: Path) -> list[Path]:
    """The generated files whose content differs from what the models give."""
    return [path for path, text in targets(root).items() if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    parser.add_argument("--check", action="store_true", help="fail when the files drift from the models")
    args = parser.parse_args(argv)
    if args.check:
        stale = drifted(args.root)
        for path in stale:
            print(f"out of date: {path} (run python -m credop.api.crdgen)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in targets(args.root).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
