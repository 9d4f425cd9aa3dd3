"""Training tests share two cores with the rest of the suite: one torch thread each runs far faster
than oversubscribed threads (the loop itself leaves a core per rendering worker)."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
