"""Wire models of the HTTP API: OpenAI's chat and completions requests (fields in the order of
OpenAI's reference, vLLM's extras fenced below) and the blueprint's legacy /vllm request."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

Temperature = Annotated[float, Field(ge=0.0, le=2.0, allow_inf_nan=False)]
TopP = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0, allow_inf_nan=False)]
MaxTokens = Annotated[StrictInt, Field(gt=0)]
StopString = Annotated[str, Field(min_length=1)]
MAX_N = 16


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StreamOptions(_Request):
    include_usage: StrictBool = False


class JSONSchemaFormat(_Request):
    name: str = "response"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Request):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class TextPart(_Request):
    type: Literal["text"]
    text: str


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class _Sampling(_Request):
    """Fields shared by chat and completions."""

    model: str | None = None
    frequency_penalty: Penalty = 0.0
    max_tokens: MaxTokens | None = None
    n: Annotated[StrictInt, Field(ge=1, le=MAX_N)] = 1
    presence_penalty: Penalty = 0.0
    seed: StrictInt | None = None
    stop: StopString | list[StopString] | None = Field(None, max_length=16)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    temperature: Temperature = 1.0
    top_p: TopP = 1.0
    user: str | None = None
    # vLLM-specific fields
    top_k: Annotated[StrictInt, Field(ge=-1)] = -1
    ignore_eos: StrictBool = False
    min_tokens: Annotated[StrictInt, Field(ge=0)] = 0

    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    logprobs: StrictBool = False
    max_completion_tokens: MaxTokens | None = None
    response_format: ResponseFormat | None = None
    top_logprobs: Annotated[StrictInt, Field(ge=0, le=20)] | None = None

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Sampling):
    prompt: str | list[int] | list[str] = Field(min_length=1)
    echo: StrictBool = False
    logprobs: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    max_tokens: MaxTokens | None = 16
    # vLLM-specific fields
    response_format: ResponseFormat | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v: str | list[int] | list[str]) -> str | list[int] | list[str]:
        if isinstance(v, list) and v and isinstance(v[0], str) and len(v) != 1:
            raise ValueError("batched prompts are not supported; send one prompt a request")
        if isinstance(v, str) and not v:
            raise ValueError("prompt must not be empty")
        return v

    @property
    def token_limit(self) -> int | None:
        return self.max_tokens


class LegacyVLLMRequest(_Request):
    """The blueprint's POST /vllm body. Unknown fields are ignored, as the blueprint did."""

    prompt: str = Field(min_length=1)
    max_tokens: MaxTokens = 16
    temperature: Temperature = 1.0
    top_p: TopP = 1.0
    top_k: Annotated[StrictInt, Field(ge=-1)] = -1
    stop: StopString | list[StopString] | None = Field(None, max_length=16)
    stream: StrictBool = False

    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
