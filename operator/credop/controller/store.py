"""What the operator knows, fed by watch events: credential bodies, policies, Secret presence.

Nothing here holds secret values: Secrets are remembered by name only.
Bodies are kept as compact JSON (about a fifth of the memory of the parsed
dicts, which matters at 10,000 credentials) and parsed when a reconcile
needs one; metrics read a few fields kept beside them.
"""

from __future__ import annotations

import array
import asyncio
import hashlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from credop import names
from credop.api.common import PENDING
from credop.api.keypolicy import KeyPolicySpec

if TYPE_CHECKING:
    from credop.controller.material import Owner, SecretRecord

Body = dict[str, Any]
Epoch = tuple[int, int, int, int]
EPOCH_BUCKETS = 1 << 16
"""Counters that Secret and record events move, shared by hash: a collision costs one needless reconcile,
never a missed one, and 100,000 credentials cost no more memory than one."""


def generation_of(body: Body) -> int:
    """``metadata.generation`` (1 for objects that do not count generations)."""
    return int(body["metadata"].get("generation", 1))


@dataclass(frozen=True, order=True)
class ObjectRef:
    plural: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.plural}/{self.namespace}/{self.name}"

    @classmethod
    def of(cls, plural: str, body: Body) -> ObjectRef:
        metadata = body["metadata"]
        return cls(plural, metadata["namespace"], metadata["name"])


@dataclass(frozen=True)
class Summary:
    """The few status fields metrics report, kept parsed for every credential."""

    phase: str
    reason: str
    true_conditions: tuple[str, ...]
    expires_at: str | None
    secret_name: str
    """The one tenant Secret a reconcile of it reads (``spec.secretName``, else its own name)."""

    @classmethod
    def of(cls, body: Body) -> Summary:
        status = body.get("status") or {}
        conditions = tuple(
            c["type"] for c in status.get("conditions") or [] if c.get("status") == "True" and "type" in c
        )
        secret_name = str((body.get("spec") or {}).get("secretName") or body["metadata"].get("name", ""))
        return cls(
            str(status.get("phase") or PENDING),
            str(status.get("reason") or ""),
            conditions,
            status.get("expiresAt"),
            secret_name,
        )


@dataclass(frozen=True)
class RecordInfo:
    """A record Secret's metadata: whose it is, its identifier, and which HMAC keys its verifiers name."""

    owner: str
    """``namespace/name`` of the credential."""
    hmac_keys: tuple[str, ...] = ()
    identifier: str = ""
    """The access key ID or client ID the record holds."""

    @classmethod
    def of(cls, annotations: dict[str, str]) -> RecordInfo:
        keys = tuple(kid for kid in annotations.get(names.VERIFIER_KEYS_ANNOTATION, "").split(",") if kid)
        return cls(annotations.get(names.OWNER_ANNOTATION, ""), keys, annotations.get(names.IDENTIFIER_ANNOTATION, ""))


class Store:
    def __init__(self, *, bucket_key: bytes | None = None) -> None:
        self._bodies: dict[ObjectRef, bytes] = {}
        self.summaries: dict[ObjectRef, Summary] = {}
        self.policies: dict[str, dict[str, KeyPolicySpec]] = defaultdict(dict)
        self.secrets: dict[tuple[str, str], str] = {}
        """(namespace, name) → owner uid of every credop-managed Secret."""
        self.records: dict[str, RecordInfo] = {}
        """Owner uid → what its record Secret says (no verifier), for every credential credop holds a record of."""
        self.written: dict[str, SecretRecord] = {}
        """Owner uid → the latest Secret this process wrote for it (status may not show it yet)."""
        self._identifiers: dict[str, str] = {}
        """Identifier → owner uid, of every record: access key IDs are unique cluster-wide at mint time."""
        self._locks: dict[ObjectRef, asyncio.Lock] = {}
        self._own_versions: dict[ObjectRef, str] = {}
        self._versions: dict[ObjectRef, str] = {}
        self._uids: dict[ObjectRef, str] = {}
        self._reconciled: dict[ObjectRef, tuple[str, Epoch]] = {}
        self._epoch = 0
        self._namespace_epochs: dict[str, int] = defaultdict(int)
        self._bucket_epochs = array.array("Q", bytes(8 * EPOCH_BUCKETS))
        """Counters that move whenever something a reconcile reads besides the object's own body changes:
        a policy in its namespace; the tenant Secret it reads (by namespace and name) or its record (by
        owner uid), in hashed buckets; anything else, all of them. :meth:`unchanged_since_reconcile`
        compares them. At 100,000 credentials in one namespace, a Secret event that moved a counter for
        the whole namespace would make every other credential count as changed."""
        self._bucket_hash = hashlib.blake2b(key=bucket_key or os.urandom(16), digest_size=8)
        """Keyed, per process: a tenant cannot compute Secret names that share another credential's bucket."""

    def lock(self, ref: ObjectRef) -> asyncio.Lock:
        """The lock that makes one reconcile at a time per object (handler or scheduler)."""
        return self._locks.setdefault(ref, asyncio.Lock())

    def remember(self, ref: ObjectRef, body: Body) -> None:
        """Keep the latest body, without managedFields (half its size, never read)."""
        metadata = body.get("metadata") or {}
        if "managedFields" in metadata:
            body = {**body, "metadata": {key: value for key, value in metadata.items() if key != "managedFields"}}
        self._bodies[ref] = json.dumps(body, separators=(",", ":")).encode()
        self.summaries[ref] = Summary.of(body)
        self._versions[ref] = str(metadata.get("resourceVersion"))
        self._uids[ref] = str(metadata.get("uid", ""))

    def touch(self, namespace: str | None = None) -> None:
        """Something besides a credential's body changed that any credential in ``namespace`` may read
        (a policy), or any credential anywhere (``None``: the keyring, say)."""
        if namespace is None:
            self._epoch += 1
        else:
            self._namespace_epochs[namespace] += 1

    def touch_secret(self, namespace: str, name: str) -> None:
        """The tenant Secret ``namespace/name`` changed (only a credential whose Secret name it is reads it)."""
        self._bucket_epochs[self._bucket("secret", namespace, name)] += 1

    def touch_record(self, uid: str) -> None:
        """The record of the credential ``uid`` changed."""
        self._bucket_epochs[self._bucket("record", uid)] += 1

    def epoch(self, ref: ObjectRef) -> Epoch:
        """Where the counters the ``touch`` methods move stand for ``ref``."""
        summary = self.summaries.get(ref)
        secret_name = summary.secret_name if summary is not None else ref.name
        buckets = self._bucket_epochs
        return (
            self._epoch,
            self._namespace_epochs.get(ref.namespace, 0),
            buckets[self._bucket("secret", ref.namespace, secret_name)],
            buckets[self._bucket("record", self._uids.get(ref, ""))],
        )

    def _bucket(self, *key: str) -> int:
        hasher = self._bucket_hash.copy()
        hasher.update("\0".join(key).encode())
        return int.from_bytes(hasher.digest(), "big") & (EPOCH_BUCKETS - 1)

    def version(self, ref: ObjectRef) -> str | None:
        """The resourceVersion of the body kept for ``ref``."""
        return self._versions.get(ref)

    def note_reconciled(self, ref: ObjectRef, version: str | None, epoch: Epoch) -> None:
        """A reconcile that started from body ``version`` at ``epoch`` completed."""
        if version is not None:
            self._reconciled[ref] = (version, epoch)

    def unchanged_since_reconcile(self, ref: ObjectRef) -> bool:
        """Whether a reconcile of ``ref`` would read exactly what its last completed one read.

        True only when nothing besides credential bodies changed since (:meth:`epoch`) and the body
        kept now is the one that reconcile started from, or the status credop itself wrote after it
        (a patch that changed nothing credop acts on). Any other event the store took in, even one
        whose handling was lost, makes it False."""
        done = self._reconciled.get(ref)
        if done is None or done[1] != self.epoch(ref):
            return False
        current = self._versions.get(ref)
        return current is not None and current in (done[0], self._own_versions.get(ref))

    def note_own_write(self, ref: ObjectRef, body: Body) -> None:
        """Remember the object as credop's own status patch left it."""
        self._own_versions[ref] = str(body["metadata"].get("resourceVersion"))

    def is_own_write(self, ref: ObjectRef, body: Body) -> bool:
        """Whether ``body`` is exactly what credop's last status patch wrote (nothing new to act on)."""
        return self._own_versions.get(ref) == str(body["metadata"].get("resourceVersion"))

    def body(self, ref: ObjectRef) -> Body | None:
        """The latest body of ``ref`` (a fresh copy: callers may not change the store through it)."""
        raw = self._bodies.get(ref)
        return json.loads(raw) if raw is not None else None

    def __contains__(self, ref: object) -> bool:
        return ref in self._bodies

    def __len__(self) -> int:
        return len(self._bodies)

    def forget(self, ref: ObjectRef) -> None:
        uid = self._uids.pop(ref, None)
        self._bodies.pop(ref, None)
        self.summaries.pop(ref, None)
        self._own_versions.pop(ref, None)
        self._versions.pop(ref, None)
        self._reconciled.pop(ref, None)
        if uid is not None:
            self.written.pop(uid, None)
        lock = self._locks.get(ref)
        if lock is not None and not lock.locked():
            del self._locks[ref]

    def uids(self) -> set[str]:
        """The uids of every object known."""
        return set(self._uids.values())

    def uid_of(self, ref: ObjectRef) -> str | None:
        return self._uids.get(ref)

    def refs(self) -> list[ObjectRef]:
        """Every object known, in no particular order."""
        return list(self._bodies)

    def refs_in(self, namespace: str, plural: str | None = None) -> list[ObjectRef]:
        return [ref for ref in self._bodies if ref.namespace == namespace and (plural is None or ref.plural == plural)]

    def set_policy(self, namespace: str, name: str, spec_body: Body) -> str | None:
        """Remember a KeyPolicy; returns the validation error, if its spec is invalid (then it is dropped)."""
        self.touch(namespace)
        try:
            self.policies[namespace][name] = KeyPolicySpec.model_validate(spec_body)
        except ValidationError as error:
            self.policies[namespace].pop(name, None)
            return str(error)
        return None

    def drop_policy(self, namespace: str, name: str) -> None:
        self.touch(namespace)
        self.policies[namespace].pop(name, None)

    def live_body(self, ref: ObjectRef) -> Body | None:
        """The latest body of ``ref``, unless it is gone or being deleted."""
        body = self.body(ref)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        return body

    def has_record(self, uid: str) -> bool:
        return uid in self.records

    def note_record(self, uid: str, info: RecordInfo) -> None:
        """A record Secret seen (listing or watch)."""
        self.forget_record(uid)
        self.records[uid] = info
        if info.identifier:
            self._identifiers[info.identifier] = uid

    def forget_record(self, uid: str) -> None:
        info = self.records.pop(uid, None)
        if info is not None and self._identifiers.get(info.identifier) == uid:
            del self._identifiers[info.identifier]

    def identifier_taken(self, identifier: str, *, by_other_than: str) -> bool:
        """Whether a record of another credential holds ``identifier``."""
        return self._identifiers.get(identifier, by_other_than) != by_other_than

    def note_secret(self, namespace: str, name: str, owner_uid: str) -> None:
        """A credential's tenant Secret seen (by name only: its data is never kept)."""
        self.secrets[(namespace, name)] = owner_uid

    def forget_secret(self, namespace: str, name: str) -> None:
        self.secrets.pop((namespace, name), None)

    def hmac_keys_in_use(self) -> set[str]:
        """Every HMAC key some record's verifier names."""
        return {kid for info in self.records.values() for kid in info.hmac_keys}

    def note_written(self, owner: Owner, record: SecretRecord) -> None:
        """Remember that credop wrote (or found) ``owner``'s record and Secret as ``record``."""
        info = self.records.get(owner.uid)
        self.note_record(
            owner.uid, RecordInfo(f"{owner.namespace}/{owner.name}", info.hmac_keys if info else (), record.identifier)
        )
        self.secrets[(owner.namespace, record.name)] = owner.uid
        known = self.written.get(owner.uid)
        if known is None or known.generation <= record.generation:
            self.written[owner.uid] = record

    def latest_record(self, uid: str, from_status: SecretRecord | None) -> SecretRecord | None:
        """What status says was minted, or what this process wrote since, whichever is newer.

        Watches of different kinds are not ordered: a Secret's deletion can arrive
        before the credential's own status update. Deciding on the status alone
        would then mint or rotate a second time.
        """
        written = self.written.get(uid)
        if written is None or (from_status is not None and from_status.generation > written.generation):
            return from_status
        if from_status is not None and from_status.generation == written.generation:
            return from_status
        return written

    def secret_exists(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self.secrets

    def client_id_holders(self, namespace: str, client_id: str, *, plural: str) -> list[Body]:
        """ApiClients in ``namespace`` whose effective client ID is ``client_id``."""
        holders = []
        for ref in self.refs_in(namespace, plural):
            body = self.body(ref)
            if body is not None and ((body.get("spec") or {}).get("clientId") or ref.name) == client_id:
                holders.append(body)
        return holders
