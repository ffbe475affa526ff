"""`rayvllm bench`: an HTTP load generator for OpenAI-compatible endpoints and the legacy /vllm.
It speaks HTTP only and never imports ray, vllm, torch or transformers."""
