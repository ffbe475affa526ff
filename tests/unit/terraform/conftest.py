from __future__ import annotations

import pytest
from eks_stack import Stack, load_stack


@pytest.fixture(scope="session")
def stack() -> Stack:
    return load_stack()
