"""Test-session setup."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """The library runs tiny tensors in Python loops (filters, EM, online CD), for which
    torch's intra-op threads only add overhead -- and stall badly on a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
