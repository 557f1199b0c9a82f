"""The Kubernetes adapter: what its errors say (and never say)."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from credop.kube.client import ConflictError, KubeApiError, NotFoundError, _translated


def test_an_unexpected_api_error_carries_no_response_body() -> None:
    error = ApiException(status=422, reason="Unprocessable Entity")
    error.body = '{"message": "Secret \\"x\\" is invalid: data[crsk_leaked_value]: Invalid value"}'
    translated = _translated(error)
    assert isinstance(translated, KubeApiError) and translated.status == 422
    assert "crsk_leaked_value" not in str(translated) and "crsk_leaked_value" not in repr(translated)


def test_not_found_and_conflict_are_their_own_errors() -> None:
    assert isinstance(_translated(ApiException(status=404, reason="Not Found")), NotFoundError)
    assert isinstance(_translated(ApiException(status=409, reason="Conflict")), ConflictError)
