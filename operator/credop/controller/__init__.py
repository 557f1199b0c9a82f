"""The operator: kopf event handlers, one scheduler, one slot actor per namespace.

Handlers are thin: parse → gather → decide (``credop.domain``) → apply (``credop.kube``).
"""
