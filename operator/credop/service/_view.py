"""Each replica's in-memory view of credentials, their verifiers, policies and credop's keys.

Fed by watch events (:mod:`credop.service._watches`) on the event loop, read by
request handlers; no API call happens on the request path. Pure: no I/O, and
``now`` is passed in wherever time matters.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from credop.api.common import ACTIVE
from credop.api.keypolicy import KeyPolicySpec
from credop.domain.keyring import Keyring
from credop.domain.policy import BUILT_IN_POLICY, resolve_policy
from credop.domain.tokens import scopes_for, scopes_for_roles, split_client_id, token_lifetime
from credop.service._records import API_CLIENT, Credential, Kind, SecretMaterial

MaterialListener = Callable[[str], None]


class CredentialView:
    """Credentials by uid, client ID and access key ID; verifiers by owner; policies; the keyring."""

    def __init__(self) -> None:
        self.keyring: Keyring | None = None
        self._credentials: dict[str, Credential] = {}
        self._by_access_key: dict[str, set[str]] = defaultdict(set)
        self._by_client_id: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self._materials: dict[str, tuple[str, SecretMaterial]] = {}
        self._policies: dict[str, dict[str, KeyPolicySpec]] = defaultdict(dict)
        self._material_listeners: list[MaterialListener] = []

    # Feeding the view ----------------------------------------------------------------------
    def on_material_change(self, listener: MaterialListener) -> None:
        """Call ``listener(owner_uid)`` whenever a credential's verifiers change or go away."""
        self._material_listeners.append(listener)

    def put_credential(self, credential: Credential, *, now: datetime.datetime) -> None:
        previous = self._credentials.get(credential.uid)
        if previous is not None:
            self._unindex(previous)
        credential = credential.noticing_invalidation(previous, now=now)
        self._credentials[credential.uid] = credential
        self._index(credential)

    def drop_credential(self, uid: str) -> None:
        previous = self._credentials.pop(uid, None)
        if previous is not None:
            self._unindex(previous)

    def replace_credentials(self, kind: Kind, credentials: Iterable[Credential], *, now: datetime.datetime) -> None:
        """A fresh listing of every credential of ``kind``: anything not in it is gone."""
        fresh = {credential.uid: credential for credential in credentials}
        for uid in [uid for uid, known in self._credentials.items() if known.kind == kind and uid not in fresh]:
            self.drop_credential(uid)
        for credential in fresh.values():
            self.put_credential(credential, now=now)

    def put_material(self, secret_key: str, material: SecretMaterial) -> None:
        """The verifiers in the Secret ``secret_key`` (``namespace/name``) for their owner."""
        previous = self._materials.get(material.owner_uid)
        self._materials[material.owner_uid] = (secret_key, material)
        if previous is None or previous[1] != material:
            self._notify(material.owner_uid)

    def drop_material(self, secret_key: str, owner_uid: str) -> None:
        known = self._materials.get(owner_uid)
        if known is not None and known[0] == secret_key:
            del self._materials[owner_uid]
            self._notify(owner_uid)

    def replace_materials(self, materials: Iterable[tuple[str, SecretMaterial]]) -> None:
        fresh = {material.owner_uid: (key, material) for key, material in materials}
        for owner_uid in [uid for uid in self._materials if uid not in fresh]:
            del self._materials[owner_uid]
            self._notify(owner_uid)
        for key, material in fresh.values():
            self.put_material(key, material)

    def put_policy(self, namespace: str, name: str, spec: Mapping[str, Any]) -> None:
        try:
            self._policies[namespace][name] = KeyPolicySpec.model_validate(spec)
        except ValidationError:
            self._policies[namespace].pop(name, None)

    def drop_policy(self, namespace: str, name: str) -> None:
        self._policies[namespace].pop(name, None)

    def replace_policies(self, policies: Iterable[tuple[str, str, Mapping[str, Any]]]) -> None:
        self._policies.clear()
        for namespace, name, spec in policies:
            self.put_policy(namespace, name, spec)

    # Reading it ----------------------------------------------------------------------------
    def credential(self, uid: str) -> Credential | None:
        return self._credentials.get(uid)

    def credentials(self) -> list[Credential]:
        return list(self._credentials.values())

    def __len__(self) -> int:
        return len(self._credentials)

    def find(self, presented: str) -> Credential | None:
        """The credential a presented client ID names: ``ns/clientId``, a unique bare client ID, or an access key ID."""
        namespace, identifier = split_client_id(presented)
        if not identifier:
            return None
        if namespace is None:
            return self.find_access_key(identifier) or self._bare_client(identifier)
        uids = self._by_client_id.get(identifier, {}).get(namespace)
        if uids:
            return self._best(uids)
        key = self.find_access_key(identifier)
        return key if key is not None and key.namespace == namespace else None

    def is_ambiguous(self, presented: str) -> bool:
        """Whether a bare client ID names clients in several namespaces (it must be qualified)."""
        namespace, identifier = split_client_id(presented)
        return namespace is None and len(self._by_client_id.get(identifier, {})) > 1

    def find_access_key(self, access_key_id: str) -> Credential | None:
        uids = self._by_access_key.get(access_key_id)
        return self._best(uids) if uids and len(uids) == 1 else None

    def verifiers(self, credential: Credential, *, now: datetime.datetime) -> tuple[str, ...]:
        """The verifiers credop recorded for this credential, under the identifier it authenticates with."""
        known = self._materials.get(credential.uid)
        if known is None or known[1].identifier != credential.identifier:
            return ()
        return known[1].verifiers_at(now)

    def policy_for(self, credential: Credential) -> KeyPolicySpec:
        resolved = resolve_policy(credential.policy_name, self._policies.get(credential.namespace, {}))
        return resolved.spec or BUILT_IN_POLICY

    def allowed_scopes(self, credential: Credential) -> tuple[str, ...]:
        """``read`` or ``read write``: from the permission level, or from the key's roles and its policy."""
        if credential.kind == API_CLIENT:
            return scopes_for(credential.permission)
        read_only = [rule.name for rule in self.policy_for(credential).roles if rule.read_only]
        return scopes_for_roles([role.name for role in credential.roles], read_only_roles=read_only)

    def token_validity(self, credential: Credential, *, now: datetime.datetime) -> int:
        default = self.policy_for(credential).token_validity.default_seconds
        if credential.kind == API_CLIENT:
            return credential.token_validity_seconds or default
        return token_lifetime(default, now=now, credential_expires_at=credential.expires_at)

    # Internals -----------------------------------------------------------------------------
    def _bare_client(self, client_id: str) -> Credential | None:
        holders = self._by_client_id.get(client_id)
        if not holders or len(holders) != 1:
            return None  # unknown, or ambiguous: several namespaces use this client ID
        (uids,) = holders.values()
        return self._best(uids)

    def _best(self, uids: Iterable[str]) -> Credential | None:
        """Of several objects claiming one ID (a duplicate fails in the operator), the Active one."""
        found = [self._credentials[uid] for uid in uids if uid in self._credentials]
        active = [credential for credential in found if credential.phase == ACTIVE]
        candidates = active or found
        return candidates[0] if len(candidates) == 1 else None

    def _index(self, credential: Credential) -> None:
        if not credential.identifier:
            return
        if credential.kind == API_CLIENT:
            self._by_client_id[credential.identifier][credential.namespace].add(credential.uid)
        else:
            self._by_access_key[credential.identifier].add(credential.uid)

    def _unindex(self, credential: Credential) -> None:
        if credential.kind == API_CLIENT:
            holders = self._by_client_id.get(credential.identifier)
            if holders is not None:
                holders.get(credential.namespace, set()).discard(credential.uid)
                if not holders.get(credential.namespace):
                    holders.pop(credential.namespace, None)
                if not holders:
                    del self._by_client_id[credential.identifier]
            return
        uids = self._by_access_key.get(credential.identifier)
        if uids is not None:
            uids.discard(credential.uid)
            if not uids:
                del self._by_access_key[credential.identifier]

    def _notify(self, owner_uid: str) -> None:
        for listener in self._material_listeners:
            listener(owner_uid)
