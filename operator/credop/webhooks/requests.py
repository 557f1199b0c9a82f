"""An admission request, parsed: who asks, for what, and the object before and after."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from credop.domain.policy import Requester

Body = dict[str, Any]
CREATE, UPDATE, DELETE = "CREATE", "UPDATE", "DELETE"


@dataclass(frozen=True)
class AdmissionRequest:
    operation: str
    """CREATE, UPDATE or DELETE."""
    plural: str
    namespace: str
    name: str
    requester: Requester
    new: Body | None
    """The object as it would be stored; None on DELETE."""
    old: Body | None
    """The object as it is stored; None on CREATE."""
    dry_run: bool = False

    @property
    def new_spec(self) -> Body:
        return dict((self.new or {}).get("spec") or {})

    @property
    def old_spec(self) -> Body:
        return dict((self.old or {}).get("spec") or {})

    @property
    def new_annotations(self) -> dict[str, str]:
        return _annotations(self.new)

    @property
    def old_annotations(self) -> dict[str, str]:
        return _annotations(self.old)

    def spec_changed(self, field: str) -> bool:
        """Whether ``spec.<field>`` differs between old and new (always True on CREATE)."""
        return self.operation == CREATE or self.old_spec.get(field) != self.new_spec.get(field)


def parse_request(
    *,
    plural: str,
    operation: str | None,
    userinfo: Mapping[str, Any],
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    dry_run: bool,
) -> AdmissionRequest:
    body = new if new is not None else old
    meta = dict((body or {}).get("metadata") or {})
    return AdmissionRequest(
        operation=operation or "",
        plural=plural,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        requester=Requester(str(userinfo.get("username") or ""), tuple(userinfo.get("groups") or ())),
        new=_plain(new),
        old=_plain(old),
        dry_run=dry_run,
    )


def _plain(body: Mapping[str, Any] | None) -> Body | None:
    return dict(body) if body is not None else None


def _annotations(body: Body | None) -> dict[str, str]:
    return dict(((body or {}).get("metadata") or {}).get("annotations") or {})
