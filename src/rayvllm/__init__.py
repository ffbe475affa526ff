"""rayvllm: serve LLMs with Ray Serve and vLLM, from a laptop to an EKS GPU fleet."""

__version__ = "0.1.0"
