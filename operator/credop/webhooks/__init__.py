"""Admission webhooks: who may create credentials, how many, with what; immutable fields; deletion protection.

Handlers are thin: parse the admission request (:mod:`.requests`), gather what
the decision needs from the API (:mod:`.gather`), decide with the named checks
of :mod:`credop.domain.policy` (:mod:`.decide`), answer (:mod:`.app`). The
server (:mod:`.server`) serves them over TLS on every operator replica, with a
certificate that is mounted, or that credop keeps in a Secret (:mod:`.tls`).
"""
