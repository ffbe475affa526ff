"""The HTTP client behind `rayvllm client`: sends prompts, times replies, writes results.txt.
It speaks HTTP only and never imports ray, vllm or torch."""
