"""The ``credop`` command line (also ``kubectl credop``): status, report and the imperative actions.

It drives credop through annotations and spec, exactly as GitOps would, and
runs the operator and the credential service (``credop operator``, ``credop service``).
"""

from __future__ import annotations

from credop.cli.app import main

__all__ = ["main"]
