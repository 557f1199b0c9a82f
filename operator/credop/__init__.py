"""credop: a Kubernetes operator that manages API credentials as custom resources."""

__version__ = "0.1.0"
GROUP = "credop.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
