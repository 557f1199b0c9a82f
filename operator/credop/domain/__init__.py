"""Pure domain logic: no kopf, no Kubernetes client, ``now`` and randomness as parameters."""
