import socket

import pytest
import torch

from vaestudy.registry.families import FAMILIES, get_family
from vaestudy.registry.load import load_vae


# a decode() that only works in its own 3-D tiles needs a whole tile even on a tiny config (seconds): the slow tier
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if f.decode_tiling == "only" else n
                                  for n, f in FAMILIES.items()])
def test_registry_facts_match_the_tiny_model(name, tiny):
    """The registry's compression factors are what the real diffusers class produces."""
    from conftest import latent_for
    from vaestudy.decode.common import own_decode, own_tile_grid

    fam = get_family(name)
    vae = tiny(name)
    assert type(vae).__name__ == fam.diffusers_class
    assert fam.repo_id.count("/") == 1 and "/" not in fam.subfolder
    base, step, _, _ = fam.frame_rule
    lt = base + step if base == 1 else base  # smallest multi-frame latent that decodes cleanly
    grid = own_tile_grid(vae)  # a decode() that only works in 3-D tiles needs a latent on its grid
    hw = 2 if grid is None else grid[1][0]
    z = latent_for(vae, lt, hw)
    out = own_decode(vae, z)  # the class's own decode(), under its calling conventions
    assert tuple(out.shape[1:]) == fam.pixel_shape(lt, hw, hw)
    assert fam.latent_shape(*out.shape[2:]) == tuple(z.shape[1:])


def test_frame_counts_and_shapes():
    wan, cog = get_family("wan2.1"), get_family("cogvideox")
    assert wan.valid_frame_counts(17) == [1, 5, 9, 13, 17]
    assert cog.valid_frame_counts(17) == [1, 9, 17]  # odd latent counts only
    assert wan.latent_shape(81, 480, 832) == (16, 21, 60, 104)
    assert get_family("ltx-video").latent_shape(121, 512, 768) == (128, 16, 16, 24)
    assert wan.latent_to_pixel_frames(0, 1) == (0, 1)
    assert wan.latent_to_pixel_frames(1, 3) == (1, 9)


@pytest.mark.parametrize("call, param", [
    (lambda: get_family("wan2.1").latent_shape(18, 64, 64), "frames=18"),
    (lambda: get_family("cogvideox").latent_shape(13, 64, 64), "frames=13"),
    (lambda: get_family("wan2.1").latent_shape(17, 60, 64), "height=60"),
    (lambda: get_family("nope"), "model='nope'"),
    (lambda: load_vae("wan2.1", weights="imaginary"), "weights='imaginary'"),
    (lambda: get_family("cogvideox").check_latent_frames(4), "latent frames=4"),
])
def test_bad_input_names_the_parameter(call, param):
    with pytest.raises(ValueError, match=param.replace("(", r"\(")):
        call()


def test_pretrained_offline_fails_fast_with_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    def no_network(*args, **kwargs):
        raise AssertionError(f"offline mode opened a connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)  # fails fast: not a single connection attempt
    with pytest.raises(OSError, match="hf download Wan-AI/Wan2.1-T2V-1.3B-Diffusers"):
        load_vae("wan2.1", weights="pretrained")


def test_pretrained_loads_from_a_local_directory(tiny, tmp_path):
    """The real from_pretrained path, offline: save a model, load it back, same outputs."""
    from conftest import assert_bit_equal, latent_for

    src = tiny("wan2.1")
    src.save_pretrained(tmp_path / "vae")
    back = load_vae("wan2.1", weights="pretrained", path=tmp_path)
    assert back.weights_source == "pretrained"
    z = latent_for(src, 2, 2)
    with torch.no_grad():
        # proof of bit equality: save_pretrained/from_pretrained round-trip fp32 weights byte for byte (safetensors),
        # so both decodes run the same kernels on the same inputs in one process
        assert_bit_equal(back.decode(z).sample, src.decode(z).sample, what="reloaded vs saved model",
                         proof="identical weights, input, kernels and thread count")
    with pytest.raises(ValueError, match="path="):
        load_vae("wan2.1", weights="pretrained", path=tmp_path / "missing")


def test_random_weights_are_seeded_and_labelled():
    a = load_vae("cogvideox", "tiny", seed=1)
    b = load_vae("cogvideox", "tiny", seed=1)
    c = load_vae("cogvideox", "tiny", seed=2)
    pa, pb, pc = (next(m.decoder.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert a.weights_source == "tiny"
