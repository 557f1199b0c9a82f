"""Attacks on availability by failed logins: wrong guesses from one place never lock the real client out."""

from __future__ import annotations

from tests.cluster.hostile import HostileBed, active_client, client

ATTACKER, VICTIM, ELSEWHERE = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def test_wrong_guesses_from_one_address_do_not_lock_the_client_out_elsewhere(hostile: HostileBed) -> None:
    victim = hostile.tenant(prefix="victim")
    client_id, secret = active_client(victim, "lockme")
    bare = client_id.split("/")[1]
    hostile.token_when_ready(client_id, secret, source=VICTIM)
    for presented in (client_id, bare) * 10:
        hostile.token(presented, "wrong-guess", source=ATTACKER)
    assert hostile.token(client_id, "wrong-guess", source=ATTACKER).status == 429, "the guesser is slowed down"
    spoofed = hostile.token(client_id, secret, source=ATTACKER, headers={"X-Forwarded-For": VICTIM})
    assert spoofed.status == 429, "X-Forwarded-For from an untrusted peer is not believed"
    assert hostile.token(client_id, secret, source=VICTIM).status == 200
    assert hostile.token(bare, secret, source=VICTIM).status == 200
    assert hostile.token(client_id, secret, source=ELSEWHERE).status == 200


def test_a_distributed_guesser_hits_the_ceiling_but_the_real_client_does_not(hostile: HostileBed) -> None:
    victim = hostile.tenant(prefix="victim")
    chosen = "Victim-Chosen-Secret-4!"
    victim.create_secret("own", {"clientSecret": chosen})
    client_id = f"{victim.namespace}/chosen"
    victim.apply(client("chosen", clientSecretRef={"name": "own"}))
    victim.wait_phase("apiclients", "chosen", "Active")
    hostile.token_when_ready(client_id, chosen, source=VICTIM)
    answers = [hostile.token(client_id, f"guess-{n}", source=f"127.0.1.{n % 250 + 1}").status for n in range(130)]
    assert answers.count(429) > 0, "past the ceiling, guesses from new addresses are not even checked"
    assert hostile.token(client_id, "another-guess", source="127.0.2.1").status == 429
    assert hostile.token(client_id, chosen, source=VICTIM).status == 200, "a known address is still served"
    assert hostile.token(client_id, chosen, source="127.0.2.2").status == 200, (
        "a secret that verified before is still served"
    )
