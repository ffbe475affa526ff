"""The engine seam: one small interface (`base.Engine`), the vLLM adapter and a fake."""
