"""``credop keyring export`` / ``import``: back up credop's keys, and restore them.

Every generated secret's verifier names an HMAC key in the keyring, and every
token and JWT key is signed by one of its keys: a cluster that loses the
keyring Secret loses every credential. ``export`` writes the Secret as a
manifest (to keep with the cluster's other root secrets); ``import`` restores
it, merging with whatever keyring exists so no key present on either side is
lost. The operator picks up an imported keyring at once.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from credop import names
from credop.cli.errors import CliError
from credop.cli.options import connect
from credop.domain.keyring import Keyring, decode_keyring, encode_keyring, merged_keyrings

if TYPE_CHECKING:
    from credop.cli.options import Subcommands

KEYS_SECRET = "credop-keys"
DEFAULT_NAMESPACE = "credop-system"


def register(commands: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "keyring",
        parents=parents,
        help="back up or restore credop's keys (the credop-keys Secret)",
        description="export: write the keyring Secret as a manifest (file mode 0600). import: restore it, keeping "
        "every key of both the backup and the cluster. The namespace is credop's own (default credop-system).",
    )
    verbs = parser.add_subparsers(dest="keyring_verb", metavar="export|import", required=True)
    export = verbs.add_parser("export", help="write the keyring as a Secret manifest")
    export.add_argument("-o", "--output", help="the file to write (default: standard output)")
    export.set_defaults(run=run_export)
    restore = verbs.add_parser("import", help="restore the keyring from an exported manifest")
    restore.add_argument("file", help="a manifest written by credop keyring export")
    restore.set_defaults(run=run_import)


def _namespace(args: argparse.Namespace) -> argparse.Namespace:
    if not getattr(args, "namespace", None):
        args.namespace = DEFAULT_NAMESPACE
    return args


def run_export(args: argparse.Namespace) -> int:
    with connect(_namespace(args)) as session:
        secret = session.read_secret(KEYS_SECRET, purpose="credop's keyring")
    if secret is None:
        raise CliError(f'there is no keyring Secret "{KEYS_SECRET}" in namespace "{args.namespace}"')
    text = yaml.safe_dump(_manifest(args.namespace, secret.get("data") or {}), sort_keys=False)
    if args.output:
        path = Path(args.output)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        print(
            f"wrote credop's keyring to {path}: it holds private keys, keep it like a root credential", file=sys.stderr
        )
    else:
        sys.stdout.write(text)
    return 0


def run_import(args: argparse.Namespace) -> int:
    incoming = _keyring_in(Path(args.file))
    with connect(_namespace(args)) as session:
        existing = session.read_secret(KEYS_SECRET, purpose="credop's keyring")
        keyring = merged_keyrings(decode_keyring(existing.get("data") or {}), incoming) if existing else incoming
        body = _manifest(args.namespace, _encoded(keyring))
        if existing is None:
            session.create_secret(body)
        else:
            body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            session.replace_secret(KEYS_SECRET, body)
    print(
        f"keyring {'restored' if existing is None else 'merged'}: {len(keyring.hmac_keys)} HMAC keys, "
        f"{len(keyring.signing_keys)} token signing keys, {len(keyring.key_signing_keys)} key signing keys"
    )
    return 0


def _keyring_in(path: Path) -> Keyring:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise CliError(f"cannot read the keyring backup {path}: {error}") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise CliError(f"{path} is not a keyring backup (a Secret manifest with data)")
    try:
        keyring = decode_keyring(data)
    except (ValueError, KeyError, TypeError) as error:
        raise CliError(f"{path} does not hold a readable keyring ({type(error).__name__})") from None
    if not keyring.hmac_keys:
        raise CliError(f"{path} holds no HMAC keys: not a credop keyring")
    return keyring


def _encoded(keyring: Keyring) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in encode_keyring(keyring).items()}


def _manifest(namespace: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": KEYS_SECRET,
            "namespace": namespace,
            "labels": {names.MANAGED_BY: names.MANAGED_BY_VALUE, "credop.dev/role": "keys"},
        },
        "data": dict(data),
    }
