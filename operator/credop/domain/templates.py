"""Rendering ``spec.secretTemplate``: ``{{ .accessKeyId }}``-style placeholders, nothing more.

Only the documented variables exist; anything else is an error that names the
field, never a silent empty string. Labels and annotations may not use secret
values (they are not secret and would leak them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from credop.api.common import SecretTemplate
from credop.domain.policy import Violation

PLACEHOLDER = re.compile(r"\{\{\s*\.([A-Za-z][A-Za-z0-9]*)\s*\}\}")
SECRET_VARIABLES = frozenset({"secretKey", "clientSecret"})
PUBLIC_VARIABLES = frozenset({"accessKeyId", "clientId", "tenant", "endpoint", "serviceAccount", "name"})
RESERVED_DATA_KEYS = frozenset({"accessKeyId", "secretKey", "clientId", "clientSecret", "verifier", "previousVerifier"})


def template_problems(template: SecretTemplate | None) -> list[Violation]:
    """What is wrong with a template, checked before anything is minted."""
    if template is None:
        return []
    problems = []
    for key, value in template.data.items():
        if key in RESERVED_DATA_KEYS:
            problems.append(Violation(f"spec.secretTemplate.data.{key}", "is a key credop writes itself"))
        problems += _unknown_variables(f"spec.secretTemplate.data.{key}", value, PUBLIC_VARIABLES | SECRET_VARIABLES)
    for section, values in (("labels", template.labels), ("annotations", template.annotations)):
        for key, value in values.items():
            problems += _unknown_variables(f"spec.secretTemplate.{section}.{key}", value, PUBLIC_VARIABLES)
    return problems


def _unknown_variables(field: str, text: str, allowed: frozenset[str]) -> list[Violation]:
    return [
        Violation(field, f'uses "{{{{ .{name} }}}}", which is not one of {", ".join(sorted(allowed))}')
        for name in PLACEHOLDER.findall(text)
        if name not in allowed
    ]


def render(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with every placeholder replaced; callers check :func:`template_problems` first."""
    return PLACEHOLDER.sub(lambda match: variables[match.group(1)], text)


def render_data(template: SecretTemplate | None, variables: Mapping[str, str]) -> dict[str, str]:
    if template is None:
        return {}
    return {key: render(value, variables) for key, value in template.data.items()}


def render_metadata(values: Mapping[str, str], variables: Mapping[str, str]) -> dict[str, str]:
    public = {name: value for name, value in variables.items() if name in PUBLIC_VARIABLES}
    return {key: PLACEHOLDER.sub(lambda match: public.get(match.group(1), ""), value) for key, value in values.items()}
