"""KIND/NAME arguments as kubectl spells them: ``sak/ci``, ``apiclients/billing``, ``kpol/default``."""

from __future__ import annotations

from dataclasses import dataclass

from credop import names
from credop.cli.errors import UsageError


@dataclass(frozen=True)
class KindInfo:
    """One credop kind: its Kind, resource plural, singular and short name."""

    kind: str
    plural: str
    short: str

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def spellings(self) -> frozenset[str]:
        return frozenset({self.kind.lower(), self.plural, self.short, f"{self.plural}.credop.dev"})


SERVICE_ACCOUNT_KEY = KindInfo("ServiceAccountKey", names.SERVICE_ACCOUNT_KEYS, "sak")
API_CLIENT = KindInfo("ApiClient", names.API_CLIENTS, "apic")
KEY_POLICY = KindInfo("KeyPolicy", names.KEY_POLICIES, "kpol")
ALL_KINDS = (SERVICE_ACCOUNT_KEY, API_CLIENT, KEY_POLICY)
CREDENTIAL_KINDS = (SERVICE_ACCOUNT_KEY, API_CLIENT)
KNOWN_SPELLINGS = "sak/serviceaccountkey, apic/apiclient or kpol/keypolicy"


@dataclass(frozen=True)
class Target:
    """One object named on the command line."""

    kind: KindInfo
    name: str

    def __str__(self) -> str:
        return f"{self.kind.singular}/{self.name}"


def kind_named(word: str, *, allowed: tuple[KindInfo, ...] = ALL_KINDS) -> KindInfo:
    """The kind ``word`` spells (case-insensitive), among ``allowed``."""
    spelled = word.strip().lower()
    for kind in allowed:
        if spelled in kind.spellings:
            return kind
    choices = ", ".join(f"{kind.short}/{kind.singular}" for kind in allowed)
    known = next((kind for kind in ALL_KINDS if spelled in kind.spellings), None)
    if known is not None:
        raise UsageError(f"this command does not work on {known.kind}s; use {choices}")
    raise UsageError(f'unknown kind "{word}": use {choices}')


def parse_target(text: str, *, allowed: tuple[KindInfo, ...] = ALL_KINDS) -> Target:
    """``"sak/ci"`` → the ServiceAccountKey named ``ci``."""
    kind_word, slash, name = text.partition("/")
    if not slash or not kind_word or not name or "/" in name:
        raise UsageError(f'"{text}" is not KIND/NAME, e.g. sak/ci-uploader or apic/billing')
    return Target(kind_named(kind_word, allowed=allowed), name)
