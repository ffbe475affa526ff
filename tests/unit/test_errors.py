from __future__ import annotations

import pytest

from rayvllm.errors import (
    BadRequestError,
    ContextLengthError,
    ModelNotFoundError,
    OverloadedError,
    RateLimitError,
    RequestTimeoutError,
    error_body,
)


@pytest.mark.parametrize(
    "exc, status, type_, code",
    [
        (BadRequestError("bad", param="temperature"), 400, "invalid_request_error", None),
        (
            ContextLengthError("long", param="messages"),
            400,
            "invalid_request_error",
            "context_length_exceeded",
        ),
        (
            ModelNotFoundError("nope", param="model"),
            404,
            "invalid_request_error",
            "model_not_found",
        ),
        (RequestTimeoutError("slow"), 408, "timeout_error", "request_timeout"),
        (
            RateLimitError("later", retry_after_s=2.4),
            429,
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        (OverloadedError("full", retry_after_s=1), 503, "service_unavailable", "overloaded"),
    ],
)
def test_each_error_maps_to_openais_body(
    exc: Exception, status: int, type_: str, code: str | None
) -> None:
    got_status, body, _ = error_body(exc)
    assert got_status == status
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == type_
    assert body["error"]["code"] == code
    assert body["error"]["message"] == str(exc)


def test_retry_after_header_is_whole_seconds() -> None:
    assert error_body(RateLimitError("x", retry_after_s=2.4))[2] == {"Retry-After": "2"}
    assert error_body(OverloadedError("x", retry_after_s=0.1))[2] == {"Retry-After": "1"}


def test_unknown_errors_reveal_nothing_internal() -> None:
    status, body, _ = error_body(RuntimeError("password=hunter2 at /secret/path"))
    assert status == 500
    assert "hunter2" not in str(body) and "/secret" not in str(body)
