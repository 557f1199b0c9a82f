"""Attacks through admission and policy: weak generated secrets, probing Secrets through the webhook's denials."""

from __future__ import annotations

import math

from tests.cluster.hostile import HostileBed, active_client, client, policy

COMPOSITION_WORDS = ("character", "letter", "digit", "special", "length", "long", "short")


def test_a_policy_cannot_weaken_generated_secrets(hostile: HostileBed) -> None:
    admin = hostile.tenant("admin", prefix="weak")
    admin.apply(
        policy(
            clientSecret={
                "minLength": 1,
                "maxLength": 8,
                "requireLetter": False,
                "requireDigit": False,
                "requireSpecial": False,
            }
        )
    )
    for maximum in (8, 1):
        admin.apply(
            policy(
                clientSecret={
                    "minLength": 1,
                    "maxLength": maximum,
                    "requireLetter": False,
                    "requireDigit": False,
                    "requireSpecial": False,
                }
            )
        )
        _, secret = active_client(admin, f"generated-{maximum}")
        assert secret.startswith("crcs_"), "generated secrets always carry the scanner prefix"
        assert (len(secret) - len("crcs_") - 6) * math.log2(62) >= 128


def test_a_tenant_without_secret_access_cannot_use_or_probe_a_secret_through_the_webhook(hostile: HostileBed) -> None:
    prober = hostile.tenant("credop-editor", prefix="prober")
    hostile.cluster.core.create_namespaced_secret(
        prober.namespace, {"metadata": {"name": "private"}, "stringData": {"clientSecret": "x"}}
    )
    answers = {}
    for name, reference in (
        ("exists", {"name": "private"}),
        ("absent", {"name": "nonexistent"}),
        ("other-key", {"name": "private", "key": "nope"}),
    ):
        result = prober.apply(client(f"probe-{name}", clientSecretRef=reference), check=False)
        assert result.returncode != 0, f"{name}: a user who may not read a Secret cannot point credop at it"
        answers[name] = result.stderr
    texts = [
        text.replace(f"probe-{name}", "").replace("nonexistent", "private").replace('"nope"', '"clientSecret"')
        for name, text in answers.items()
    ]
    assert "may not read" in answers["exists"] or "cannot get" in answers["exists"], answers["exists"]
    assert len(set(texts)) == 1, f"the denials differ, so they tell which Secret exists: {answers}"
    assert not any(word in answers["exists"].lower() for word in COMPOSITION_WORDS), answers["exists"]


def test_a_denied_chosen_secret_reveals_neither_its_length_nor_its_make_up(hostile: HostileBed) -> None:
    editor = hostile.tenant(prefix="editor")
    editor.create_secret("short", {"clientSecret": "abc"})
    result = editor.apply(client("short", clientSecretRef={"name": "short"}), check=False)
    assert result.returncode != 0 and "spec.clientSecretRef" in result.stderr
    assert "(it has" not in result.stderr and " 3 " not in result.stderr
    assert "must contain" not in result.stderr, "which rule failed tells the make-up of the value"
