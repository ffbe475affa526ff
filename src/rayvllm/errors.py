"""rayvllm's exception tree and its one mapping to OpenAI's error body.

    RayVLLMError
    ├── RequestError                 4xx: the caller can fix it
    │   ├── BadRequestError          400 invalid_request_error
    │   │   └── ContextLengthError   400 context_length_exceeded
    │   ├── AuthenticationError      401
    │   ├── ModelNotFoundError       404
    │   ├── RequestTimeoutError      408
    │   ├── PayloadTooLargeError     413
    │   └── RateLimitError           429 (Retry-After)
    └── ServerError                  5xx: ours to fix
        ├── EngineUnavailableError   503 (engine dead or not ready)
        └── OverloadedError          503 (queue full; Retry-After)

The client sees `message`; `internal` goes to the log only (never a secret in either).
"""

from __future__ import annotations

from typing import Any


class RayVLLMError(Exception):
    status_code = 500
    error_type = "internal_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        internal: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.internal = internal
        self.retry_after_s = retry_after_s


class RequestError(RayVLLMError):
    status_code = 400
    error_type = "invalid_request_error"


class BadRequestError(RequestError):
    pass


class ContextLengthError(BadRequestError):
    code = "context_length_exceeded"


class AuthenticationError(RequestError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class ModelNotFoundError(RequestError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class RequestTimeoutError(RequestError):
    status_code = 408
    error_type = "timeout_error"
    code = "request_timeout"


class PayloadTooLargeError(RequestError):
    status_code = 413
    code = "payload_too_large"


class RateLimitError(RequestError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class ServerError(RayVLLMError):
    status_code = 500
    error_type = "internal_error"


class EngineUnavailableError(ServerError):
    status_code = 503
    error_type = "service_unavailable"
    code = "engine_unavailable"


class OverloadedError(ServerError):
    status_code = 503
    error_type = "service_unavailable"
    code = "overloaded"


def error_body(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Map any exception to (status, OpenAI error body, headers). Unknown errors become a 500
    whose message reveals nothing internal."""
    if not isinstance(exc, RayVLLMError):
        exc = ServerError("The server had an error while processing your request.")
    headers: dict[str, str] = {}
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    body = {
        "error": {
            "message": exc.message,
            "type": exc.error_type,
            "param": exc.param,
            "code": exc.code,
        }
    }
    return exc.status_code, body, headers
