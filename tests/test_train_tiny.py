"""The trainer's command line: what a model card's command means, and what it refuses."""

import shlex

import pytest
import torch

from conftest import FP32_EXACT, assert_video_close
from vaestudy.registry.embedded import (
    EMBEDDED,
    EMBEDDED_ALIASES,
    build_model,
    embedded_card,
    embedded_config,
    embedded_entry,
    freeze_decoder_attention,
)
from vaestudy.registry.families import get_family
from vaestudy.training.train_tiny import (
    _recipe,
    command_line,
    decode_unclamped,
    forward_train,
    model_card_markdown,
    parse_args,
    uses_long_crops,
)


@pytest.mark.parametrize("family", sorted(EMBEDDED))
def test_model_card_command_reproduces_the_card_recipe(family):
    """The command printed in a card parses to exactly the recipe its checkpoint was trained with."""
    tr = embedded_card(family)["training"]
    argv = shlex.split(tr["command"])
    assert argv[:3] == ["python", "-m", "vaestudy.training.train_tiny"]
    args = parse_args(argv[3:])
    assert _recipe(args) == tr["recipe"]
    assert command_line(args) == tr["command"]


def test_residual_variant_is_opt_in_for_wan_and_refused_for_cogvideox():
    assert parse_args(["--family", "wan"]).residual is False
    assert parse_args(["--family", "wan", "--residual"]).residual is True
    assert "residual" not in _recipe(parse_args(["--family", "wan"]))  # recipes from before the option still resume
    assert _recipe(parse_args(["--family", "wan", "--residual"]))["residual"] is True
    with pytest.raises(SystemExit):
        parse_args(["--family", "cogvideox", "--residual"])
    with pytest.raises(ValueError, match=r"residual=True applies to family='wan' only \(diffusers' is_residual "
                                         r"blocks exist in AutoencoderKLWan only\)"):
        embedded_config("cogvideox", 16, residual=True)
    assert embedded_config("wan", 16, residual=True)[1]["is_residual"] is True
    assert "is_residual" not in embedded_config("wan", 16)[1]


def test_no_decoder_attention_is_opt_in_for_wan_and_refused_for_cogvideox(capsys):
    args = parse_args(["--family", "wan", "--residual", "--no-decoder-attention"])
    assert _recipe(args)["no_decoder_attention"] is True
    assert "--no-decoder-attention" in shlex.split(command_line(args))
    assert "no_decoder_attention" not in _recipe(parse_args(["--family", "wan"]))  # older recipes still resume
    with pytest.raises(SystemExit):
        parse_args(["--family", "cogvideox", "--no-decoder-attention"])
    assert ("--no-decoder-attention applies to --family wan only (got --family cogvideox): AutoencoderKLCogVideoX's "
            "decoder has no mid-block attention") in capsys.readouterr().err
    cls, cfg = embedded_config("cogvideox", 8)
    with pytest.raises(ValueError, match="AutoencoderKLCogVideoX .cogvideox. has no decoder mid-block attention"):
        freeze_decoder_attention(build_model(cls, cfg))


def test_family_spellings_are_the_registrys_and_unchanged():
    """``--family`` takes exactly the spellings the shipped cards' commands record, each naming an embedded model."""
    assert sorted(EMBEDDED_ALIASES) == ["cogvideox", "wan"]
    assert sorted(EMBEDDED_ALIASES.values()) == sorted(EMBEDDED)
    for alias, key in EMBEDDED_ALIASES.items():
        assert embedded_entry(alias) is embedded_entry(key) is EMBEDDED[key]
        assert parse_args(["--family", alias]).family == alias
    with pytest.raises(SystemExit):
        parse_args(["--family", "wan2.1"])  # a registry key is not a trainer spelling
    with pytest.raises(ValueError, match="family='sd15' has no embedded model; valid: wan, cogvideox, wan2.1"):
        embedded_config("sd15", 8)


@pytest.mark.parametrize("family", sorted(EMBEDDED))
def test_registry_builds_the_config_each_shipped_model_was_trained_with(family):
    """The registry's tiny config at the card's recipe is the card's config (latent statistics are measured at ship)."""
    card = embedded_card(family)
    r = card["training"]["recipe"]
    cls, cfg = embedded_config(r["family"], r["width"], residual=r.get("residual", False))
    assert cls == card["diffusers_class"] == get_family(family).diffusers_class
    drop = ("latents_mean", "latents_std")
    assert {k: v for k, v in cfg.items() if k not in drop} == {k: v for k, v in card["config"].items() if k not in drop}
    assert list(cfg) == list(card["config"])  # the same key order: the JSON card reads the same


@pytest.mark.parametrize("family", sorted(EMBEDDED))
def test_model_card_says_which_family_and_class_from_the_registry(family):
    md = model_card_markdown(embedded_card(family))
    f = get_family(family)
    assert md.startswith(f"# {EMBEDDED[family].stem}: an {f.diffusers_class} trained in-project on CPU\n")
    assert f"real `{f.name}` VAE" in md and f"load_embedded(\"{f.name}\")" in md
    assert f"({f.temporal_compression}x{f.spatial_compression}x{f.spatial_compression}, {f.latent_channels} latent" in md


@pytest.mark.parametrize("alias", sorted(EMBEDDED_ALIASES))
def test_training_decode_is_the_familys_own_decode_without_the_clamp(alias):
    """The family's decode() values before its clamp, and its gradients where the clamp passes them: bit-identical,
    since the same operations run on the same shapes in the same order in one process (a change of that order, e.g.
    the post-quant conv applied per frame as a stream does, changes the gradient sums and is caught here)."""
    torch.manual_seed(0)
    vae = build_model(*embedded_config(alias, 8)).train()
    family = embedded_entry(alias).vae_family
    z = torch.randn(1, 16, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        inside = (decode_unclamped(vae, z, family).abs() < 1).float()  # where a clamp would pass the gradient
    grads, outs = [], []
    for decode in (lambda: decode_unclamped(vae, z, family), lambda: vae._decode(z).sample):
        vae.zero_grad(set_to_none=True)
        out = decode()
        (out * inside).square().mean().backward()
        outs.append(out.detach())
        grads.append({n: p.grad for n, p in vae.named_parameters() if p.grad is not None})  # the decoder's
    own = outs[0].clamp(-1, 1) if family.clamps_output else outs[0]
    assert_video_close(own, outs[1], atol=FP32_EXACT)
    assert grads[0].keys() == grads[1].keys() and any("post_quant_conv" in n for n in grads[1]) == family.clamps_output
    for n in grads[1]:  # same arithmetic: gradients agree to fp32 rounding
        torch.testing.assert_close(grads[0][n], grads[1][n], rtol=1e-5, atol=1e-7, msg=n)
    if family.clamps_output:  # and the training decode really is unclamped
        assert 0 < float(inside.mean()) < 1 and float(outs[0].abs().max()) > 1


def test_frozen_decoder_attention_is_the_identity_and_stays_so_through_training():
    torch.manual_seed(0)
    cls, cfg = embedded_config("wan", 8, residual=True)
    vae = build_model(cls, cfg).train()
    attn = vae.decoder.mid_block.attentions[0]
    h = torch.randn(1, attn.dim, 2, 3, 3)
    assert not torch.allclose(attn(h), h)  # a fresh block is not the identity
    freeze_decoder_attention(vae)
    opt = torch.optim.AdamW([p for p in vae.parameters() if p.requires_grad], lr=1e-2)
    x = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    rec, _, _ = forward_train(vae, "wan", x, torch.Generator().manual_seed(0))
    (rec - x).abs().mean().backward()
    opt.step()
    assert torch.equal(attn(h), h)
    assert all(p.grad is None for p in attn.parameters())
    assert any(p.grad is not None for p in vae.decoder.mid_block.resnets.parameters())  # the rest trains


@pytest.mark.parametrize("argv, message", [
    (["--family", "wan", "--frames", "8"], "--frames=8 must be 1 + 4k"),
    (["--family", "cogvideox", "--frames", "13"], "CogVideoX decodes cleanly only 1 + 8k frames"),
    (["--family", "wan", "--crop", "60"], "--crop=60 must be a positive multiple of 8"),
])
def test_bad_arguments_name_the_parameter_and_what_is_valid(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err


def test_data_options_enter_recipe_and_command_only_when_set(capsys):
    plain = parse_args(["--family", "wan"])
    for name in ("max_stride", "stride_fraction", "cut_fraction", "colour_fraction"):  # older cards still parse
        assert name not in _recipe(plain) and f"--{name.replace('_', '-')}" not in command_line(plain)
    args = parse_args(["--family", "wan", "--max-stride", "4", "--stride-fraction", "0.6", "--cut-fraction", "0.2",
                       "--colour-fraction", "0.5"])
    assert _recipe(args)["max_stride"] == 4 and _recipe(args)["stride_fraction"] == 0.6
    assert _recipe(args)["cut_fraction"] == 0.2 and _recipe(args)["colour_fraction"] == 0.5
    again = parse_args(shlex.split(command_line(args))[3:])
    assert _recipe(again) == _recipe(args)
    for bad, words in ((["--max-stride", "0"], "--max-stride=0"), (["--stride-fraction", "1.5"], "--stride-fraction=1.5"),
                       (["--cut-fraction", "-1"], "--cut-fraction=-1"),
                       (["--colour-fraction", "2"], "--colour-fraction=2")):
        with pytest.raises(SystemExit):
            parse_args(["--family", "wan", *bad])
        assert words in capsys.readouterr().err


def test_long_crop_options_enter_recipe_and_command_only_when_set(capsys):
    assert "long_every" not in _recipe(parse_args(["--family", "wan"]))  # older recipes still resume
    args = parse_args(["--family", "wan", "--frames", "9", "--long-frames", "17", "--long-every", "4"])
    assert (_recipe(args)["long_frames"], _recipe(args)["long_every"]) == (17, 4)
    assert _recipe(parse_args(shlex.split(command_line(args))[3:])) == _recipe(args)
    assert [s for s in range(9) if uses_long_crops(s, 4)] == [3, 7]
    assert not any(uses_long_crops(s, 0) for s in range(9))
    for bad, words in ((["--long-frames", "17"], "set both or neither"),
                       (["--long-frames", "15", "--long-every", "4"], "--long-frames=15 must be 1 + 4k"),
                       (["--long-frames", "9", "--long-every", "4"], "more than --frames=9"),
                       (["--long-frames", "17", "--long-every", "1"], "--long-every=1 must be >= 2")):
        with pytest.raises(SystemExit):
            parse_args(["--family", "wan", "--frames", "9", *bad])
        assert words in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--family", "cogvideox", "--frames", "9", "--long-frames", "13", "--long-every", "2"])
    assert "--long-frames=13 must be 1 + 8k" in capsys.readouterr().err


@pytest.mark.slow  # four training steps, twice, plus an eval

def test_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch):
    """SIGTERM mid-run checkpoints; the same command resumes to bit-identical weights.  Also: every 2nd step
    trains on the long crops, and the caller's signal handlers are back afterwards."""
    import signal

    from vaestudy.training import train_tiny

    real_step, lengths, stop_after = train_tiny.train_step, [], []

    def step(vae, opt, family, x, gen, **kw):
        out = real_step(vae, opt, family, x, gen, **kw)
        lengths.append(x.shape[2])
        if len(lengths) in stop_after:
            signal.raise_signal(signal.SIGTERM)
        return out

    monkeypatch.setattr(train_tiny, "train_step", step)
    # one small held-out crop: the property is the resumed weights and eval, not the card's score (seconds, not a minute)
    monkeypatch.setattr(train_tiny, "HELDOUT", {**train_tiny.HELDOUT, "n": 1, "frames": 5, "size": (32, 32)})
    argv = ["--family", "wan", "--width", "8", "--residual", "--frames", "5", "--long-frames", "9", "--long-every", "2",
            "--crop", "16", "--batch", "1", "--steps", "4", "--warmup", "1", "--still-fraction", "0",
            "--bbb-scales", "0.25", "--no-ship"]
    before = signal.getsignal(signal.SIGTERM)
    train_tiny.train(parse_args(argv + ["--out", str(tmp_path / "straight")]))
    assert lengths == [5, 9, 5, 9] and signal.getsignal(signal.SIGTERM) is before

    lengths.clear()
    stop_after.append(2)
    with pytest.raises(SystemExit):
        train_tiny.train(parse_args(argv + ["--out", str(tmp_path / "resumed")]))
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)["step"] == 2
    train_tiny.train(parse_args(argv + ["--out", str(tmp_path / "resumed")]))
    assert lengths == [5, 9, 5, 9] and signal.getsignal(signal.SIGTERM) is before

    a, b = (torch.load(tmp_path / d / "last.pt", weights_only=False) for d in ("straight", "resumed"))
    assert a["step"] == b["step"] == 4
    for part in ("model", "ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])
    assert a["evals"][-1]["heldout_psnr_db"] == b["evals"][-1]["heldout_psnr_db"]
