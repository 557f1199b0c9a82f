"""The accounts each role covers, as access tokens carry them (``role_accounts``) for offline checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credop.domain.tokens import (
    ROLE_ACCOUNTS_CLAIM,
    TokenSubject,
    access_token_claims,
    accounts_by_role,
    granted_accounts,
    narrowed_accounts,
)
from tests.servicekit import EPOCH


@pytest.mark.parametrize(
    ("roles", "accounts"),
    [
        ([], {}),
        ([("GlobalViewer", [])], {"GlobalViewer": ("*",)}),
        ([("CloudAccountViewer", ["acct-1", "acct-2"])], {"CloudAccountViewer": ("acct-1", "acct-2")}),
        ([("CloudAccountViewer", ["*"])], {"CloudAccountViewer": ("*",)}),
        (
            [("CloudAccountViewer", ["acct-1"]), ("CloudAccountViewer", ["acct-2", "acct-1"])],
            {"CloudAccountViewer": ("acct-1", "acct-2")},
        ),
        ([("CloudAccountViewer", ["acct-1"]), ("CloudAccountViewer", ["*"])], {"CloudAccountViewer": ("*",)}),
        ([("CloudAccountViewer", ["acct-1"]), ("CloudAccountViewer", [])], {"CloudAccountViewer": ("*",)}),
        (
            [("GlobalAdmin", []), ("CloudAccountViewer", ["acct-9"])],
            {"GlobalAdmin": ("*",), "CloudAccountViewer": ("acct-9",)},
        ),
    ],
)
def test_each_role_says_its_accounts(roles: list[tuple[str, list[str]]], accounts: dict[str, tuple[str, ...]]) -> None:
    assert accounts_by_role(roles) == accounts


names = st.sampled_from(["GlobalAdmin", "GlobalViewer", "CloudAccountViewer"])
scopes = st.lists(st.sampled_from(["a", "b", "c", "*"]), max_size=3)


@given(st.lists(st.tuples(names, scopes), max_size=6))
def test_a_token_never_covers_an_account_no_role_entry_granted(roles: Sequence[tuple[str, list[str]]]) -> None:
    accounts = accounts_by_role(roles)
    assert set(accounts) == {name for name, _ in roles}
    for name, covered in accounts.items():
        entries = [scope for role, scope in roles if role == name]
        if "*" in covered:
            assert covered == ("*",) and any(not scope or "*" in scope for scope in entries)
        else:
            assert set(covered) == {account for scope in entries for account in scope}


def claims_of(subject: TokenSubject) -> dict[str, Any]:
    return access_token_claims(
        subject,
        issuer="https://credop",
        audience="https://credop",
        scopes=("read",),
        now=EPOCH,
        lifetime_seconds=60,
        jti="j",
    )


def test_access_tokens_carry_the_accounts_of_each_role() -> None:
    subject = TokenSubject(
        namespace="team-a",
        kind="ServiceAccountKey",
        name="viewer",
        client_id="team-a/AK",
        subject="team-a/ci-bot",
        roles=("CloudAccountViewer",),
        role_accounts={"CloudAccountViewer": ("acct-1",)},
    )
    claims = claims_of(subject)
    assert claims["roles"] == ["CloudAccountViewer"]
    assert claims[ROLE_ACCOUNTS_CLAIM] == {"CloudAccountViewer": ["acct-1"]}


def test_a_client_without_roles_carries_no_role_claims() -> None:
    subject = TokenSubject(namespace="t", kind="ApiClient", name="c", client_id="t/c", subject="t/c")
    claims = claims_of(subject)
    assert "roles" not in claims and ROLE_ACCOUNTS_CLAIM not in claims


@pytest.mark.parametrize(
    ("granted", "allowed_now", "narrowed"),
    [
        ({"CloudAccountViewer": ("a", "b")}, {"CloudAccountViewer": ("a", "b")}, {"CloudAccountViewer": ("a", "b")}),
        ({"CloudAccountViewer": ("a", "b")}, {"CloudAccountViewer": ("b",)}, {"CloudAccountViewer": ("b",)}),
        ({"CloudAccountViewer": ("a",)}, {"CloudAccountViewer": ("b",)}, {}),
        ({"CloudAccountViewer": ("a",)}, {"CloudAccountViewer": ("*",)}, {"CloudAccountViewer": ("a",)}),
        ({"CloudAccountViewer": ("*",)}, {"CloudAccountViewer": ("c",)}, {"CloudAccountViewer": ("c",)}),
        ({"GlobalAdmin": ("*",)}, {"GlobalViewer": ("*",)}, {}),
        ({}, {"GlobalAdmin": ("*",)}, {}),
    ],
)
def test_a_tokens_accounts_narrow_with_its_key_and_never_widen(
    granted: dict[str, tuple[str, ...]], allowed_now: dict[str, tuple[str, ...]], narrowed: dict[str, tuple[str, ...]]
) -> None:
    assert narrowed_accounts(granted, allowed_now) == narrowed


@given(st.lists(st.tuples(names, scopes), max_size=5), st.lists(st.tuples(names, scopes), max_size=5))
def test_narrowed_accounts_are_covered_by_both_sides(
    granted: Sequence[tuple[str, list[str]]], allowed: Sequence[tuple[str, list[str]]]
) -> None:
    before, now = accounts_by_role(granted), accounts_by_role(allowed)

    def covers(accounts: tuple[str, ...], account: str) -> bool:
        return "*" in accounts or account in accounts

    for role, accounts in narrowed_accounts(before, now).items():
        for account in accounts:
            assert covers(before[role], account) and covers(now[role], account)


def test_a_token_from_before_the_claim_counts_its_roles_as_unscoped() -> None:
    assert granted_accounts({"roles": ["GlobalViewer"]}) == {"GlobalViewer": ("*",)}
    assert granted_accounts({"role_accounts": {"CloudAccountViewer": ["a"]}}) == {"CloudAccountViewer": ("a",)}
    assert granted_accounts({}) == {}
