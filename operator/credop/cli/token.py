"""``credop token``: get an access token for an ApiClient (or ServiceAccountKey) from its Secret."""

from __future__ import annotations

import argparse
import json
import os
import ssl
from typing import TYPE_CHECKING

from credop import names
from credop.cli.cluster import Body, Session
from credop.cli.errors import CliError, UsageError
from credop.cli.kinds import API_CLIENT, SERVICE_ACCOUNT_KEY, Target, parse_target
from credop.cli.oauth import TOKEN_PATH, ClientCredentials, request_token, token_url_for
from credop.cli.options import connect

if TYPE_CHECKING:
    from credop.cli.options import Subcommands

SECRET_ENVIRONMENT_VARIABLE = "CREDOP_CLIENT_SECRET"


def register(commands: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "token",
        parents=parents,
        help="get an access token for a client (client credentials grant)",
        description="Read the client's Secret (clientId, clientSecret, tokenUrl) and ask the token endpoint for "
        "an access token. The Secret's tokenUrl is the in-cluster address; from outside, port-forward the "
        "credential service and pass --endpoint.",
    )
    parser.add_argument("target", nargs="?", metavar="apiclient/NAME", help="the client (or sak/NAME) to use")
    parser.add_argument("--client-id", help="use this client ID instead of a client's Secret (needs --endpoint)")
    parser.add_argument("--client-secret", help=f"the secret for --client-id (default: ${SECRET_ENVIRONMENT_VARIABLE})")
    parser.add_argument("--endpoint", help="the credential service's URL or token URL, e.g. http://localhost:8080")
    parser.add_argument("--scope", help="the scope to ask for (default: the client's permission)")
    parser.add_argument(
        "-o", "--output", choices=("token", "json"), default="token", help="the access token alone, or the JSON"
    )
    parser.add_argument("--cacert", help="a CA bundle to verify the endpoint's certificate")
    parser.add_argument(
        "--insecure-skip-tls-verify", action="store_true", help="do not verify the endpoint's certificate"
    )
    parser.set_defaults(run=run_token)


def run_token(args: argparse.Namespace) -> int:
    credentials = _credentials(args)
    answer = request_token(credentials, scope=args.scope, tls=_tls(args, credentials))
    print(json.dumps(answer, indent=2) if args.output == "json" else answer["access_token"])
    return 0


def _credentials(args: argparse.Namespace) -> ClientCredentials:
    if args.client_id:
        if args.target:
            raise UsageError("give either apiclient/NAME or --client-id, not both")
        return _given_credentials(args)
    if not args.target:
        raise UsageError("say which client: apiclient/NAME, or --client-id with --client-secret and --endpoint")
    target = parse_target(args.target, allowed=(API_CLIENT, SERVICE_ACCOUNT_KEY))
    with connect(args) as session:
        credentials = stored_credentials(session, target)
    if args.endpoint:
        return ClientCredentials(
            credentials.client_id, credentials.client_secret, token_url_for(args.endpoint), credentials.ca
        )
    return credentials


def _given_credentials(args: argparse.Namespace) -> ClientCredentials:
    secret = args.client_secret or os.environ.get(SECRET_ENVIRONMENT_VARIABLE)
    if not secret:
        raise UsageError(f"--client-id needs --client-secret (or ${SECRET_ENVIRONMENT_VARIABLE})")
    if not args.endpoint:
        raise UsageError("--client-id needs --endpoint, the credential service's URL")
    return ClientCredentials(args.client_id, secret, token_url_for(args.endpoint))


def stored_credentials(session: Session, target: Target) -> ClientCredentials:
    """The ID, secret and token URL from the credential's Secret (and clientSecretRef for user-chosen secrets).

    Client IDs are unique per namespace only, so the token endpoint is sent ``<namespace>/<clientId>``.
    """
    body = session.get(target)
    secret_name = _secret_name(body)
    data = session.read_secret_data(secret_name, purpose=f"the credentials of {target}")
    if data is None:
        raise CliError(f'{session.describe(target)} has no Secret "{secret_name}"{_why_no_secret(body)}')
    if target.kind is SERVICE_ACCOUNT_KEY:
        return _key_credentials(session, target, data)
    namespace = body["metadata"]["namespace"]
    return ClientCredentials(
        client_id=f"{namespace}/{_required(session, target, data, names.CLIENT_ID)}",
        client_secret=data.get(names.CLIENT_SECRET) or _user_chosen_secret(session, target, body),
        token_url=_required(session, target, data, names.TOKEN_URL),
        ca=data.get(names.TOKEN_CA),
    )


def _key_credentials(session: Session, target: Target, data: dict[str, str]) -> ClientCredentials:
    endpoint = _required(session, target, data, names.ENDPOINT)
    return ClientCredentials(
        client_id=_required(session, target, data, names.ACCESS_KEY_ID),
        client_secret=_required(session, target, data, names.SECRET_KEY),
        token_url=endpoint.rstrip("/") + TOKEN_PATH,
        ca=data.get(names.TOKEN_CA),
    )


def _secret_name(body: Body) -> str:
    status, spec = body.get("status") or {}, body.get("spec") or {}
    return str((status.get("secretRef") or {}).get("name") or spec.get("secretName") or body["metadata"]["name"])


def _why_no_secret(body: Body) -> str:
    status = body.get("status") or {}
    if not status.get("phase") or status.get("phase") == "Pending":
        return ": credop has not minted it yet (is the operator running?)"
    if status.get("reason"):
        return f" (phase {status['phase']}, {status['reason']}): rotate it to mint a new one"
    return ": rotate it to mint a new one"


def _required(session: Session, target: Target, data: dict[str, str], key: str) -> str:
    value = data.get(key)
    if not value:
        raise CliError(f'the Secret of {session.describe(target)} has no "{key}"')
    return value


def _user_chosen_secret(session: Session, target: Target, body: Body) -> str:
    """A client secret the user supplied lives in their own Secret (spec.clientSecretRef), not credop's."""
    reference = (body.get("spec") or {}).get("clientSecretRef")
    if not reference:
        raise CliError(f'the Secret of {session.describe(target)} has no "{names.CLIENT_SECRET}"')
    key = reference.get("key") or names.CLIENT_SECRET
    data = session.read_secret_data(reference["name"], purpose=f"spec.clientSecretRef of {target}")
    if data is None or not data.get(key):
        raise CliError(
            f'{session.describe(target)}: spec.clientSecretRef names Secret "{reference["name"]}" key "{key}", '
            "which does not exist"
        )
    return data[key]


def _tls(args: argparse.Namespace, credentials: ClientCredentials) -> ssl.SSLContext | None:
    """--insecure-skip-tls-verify, else --cacert, else the CA in the credential's Secret, else the system's."""
    if args.insecure_skip_tls_verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if args.cacert:
        return ssl.create_default_context(cafile=args.cacert)
    if credentials.ca:
        return ssl.create_default_context(cadata=credentials.ca)
    return None
