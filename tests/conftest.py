import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def tiny():
    """Tiny random-weight models of each family, built once per test session."""
    from vaestudy.models import load_vae

    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_vae(name, "tiny")
        return cache[name]

    return get


def latent_for(vae, frames: int, hw: int, seed: int = 0) -> torch.Tensor:
    from vaestudy.decode.common import latent_channels

    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, latent_channels(vae), frames, hw, hw, generator=g)
