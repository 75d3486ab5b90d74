"""Bad input on the command line: one clean error naming the parameter, exit code 2, before any model is loaded.

The model loaders are replaced by functions that fail the test if called, so every case below proves its check runs
before the expensive part; each must also answer within 2 s.
"""

from __future__ import annotations

import time

import pytest

from vaestudy.cli import build_parser, main
from vaestudy.registry import embedded as registry_embedded
from vaestudy.registry import load as registry_load

BAD = {
    "decode-check": [(["--overlap", "-1"], "overlap=-1"), (["--chunk", "0"], "chunk=0"),
                     (["--frames", "6"], "1 + 4*k"), (["--size", "64x60"], "60"), (["--size", "big"], "size='big'"),
                     (["--model", "cogvideox", "--chunk", "1"], "chunk=1"), (["--frames", "0"], "frames=0"),
                     (["--size", "16x16"], "too small to tile")],
    "probe": [(["--latent", "0", "4", "4"], "latent"), (["--share", "1.5"], "share=1.5"), (["--tiles", "-1"], "tiles=-1"),
              (["--step", "0"], "step=0"), (["--model", "cogvideox", "--latent", "2", "8", "8"], "latent")],
    "bench": [(["--frames", "8"], "1 + 4*k"), (["--size", "16x16", "--strategies", "tiled"], "too small to tile"), (["--strategies", "full,sideways"], "sideways"), (["--size", "64x60"], "60"),
              (["--threads", "0"], "threads=0"), (["--repeats", "0"], "repeats=0"), (["--chunk", "0"], "chunk=0"),
              (["--overlap", "-1"], "overlap"), (["--tile", "0"], "tile"), (["--warmup", "-1"], "warmup=-1")],
    "plan": [(["--memory-budget", "lots"], "lots"), (["--memory-budget", "8"], "unit"), (["--frames", "80"], "1 + 4*k"),
             (["--top", "0"], "top=0"), (["--size", "480x830"], "830")],
    "stream": [(["overlap", "--shares", "1.5"], "share"), (["overlap", "--chunks", "1"], "chunks=1"),
               (["overlap", "--latent-hw", "0x4"], "latent-hw"), (["overlap", "--every", "-1"], "every=-1"),
               (["overlap", "--repeats", "0"], "repeats=0"), (["two-device", "--window", "6"], "window=6"),
               (["two-device", "--windows", "0"], "windows=0"), (["two-device", "--fps", "0"], "fps=0"),
               (["two-device", "--send-queue", "0"], "send-queue=0"), (["split", "--latent", "0x4x8"], "latent"),
               (["split", "--halos", "2,wide"], "wide"), (["two-device", "--timeout", "0"], "timeout=0")],
    "split-exact": [(["--ranks", "1"], "ranks=1"), (["--latent", "3x8"], "latent="), (["--models", "nosuch"], "nosuch"),
                    (["--repeats", "0"], "repeats=0"), (["--ranks", "two"], "ranks=")],
    "report": [(["--notebooks", "99_nosuch.ipynb"], "99_nosuch"), (["--jobs", "0"], "jobs=0"),
               (["--model", "nosuch"], "nosuch"), (["--weights", "heavy"], "heavy")],
}
CASES = [(cmd, argv, msg) for cmd, rows in BAD.items() for argv, msg in rows]


@pytest.fixture
def no_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a model was loaded before the bad input was refused: {args}")

    # every weight source goes through one of these (random/tiny/pretrained build the diffusers class; embedded
    # builds the shipped model)
    monkeypatch.setattr(registry_load, "_vae_class", refuse)
    monkeypatch.setattr(registry_embedded, "build_model", refuse)


@pytest.mark.parametrize("cmd, argv, msg", CASES, ids=[f"{c} {' '.join(a)}" for c, a, _ in CASES])
def test_bad_input_errors_fast_without_loading_a_model(no_model, capsys, cmd, argv, msg, tmp_path, monkeypatch):
    if cmd != "report":  # report needs the checkout; plan/bench defaults point into results/: keep them out of it
        monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    try:
        code = main([cmd, *argv])
    except SystemExit as exc:  # argparse's own errors (choices, types)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}; stderr: {err[-500:]}"
    assert msg in err, err[-500:]
    assert "Traceback" not in err
    assert time.perf_counter() - t0 < 2.0


def test_every_subcommand_shows_its_defaults_in_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "(default:" in text, f"{name} --help shows no defaults"
        undocumented = [a.option_strings for a in p._actions
                        if a.option_strings and a.dest != "help" and not a.help]
        assert not undocumented, f"{name}: options without help text: {undocumented}"


def test_pretrained_offline_is_one_clean_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    code = main(["decode-check", "--weights", "pretrained", "--frames", "5", "--size", "32x32"])
    err = capsys.readouterr().err
    assert code == 2
    assert "hf download Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in err and "huggingface-cli" not in err
    assert "Traceback" not in err and "Warning" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", list(__import__("vaestudy.registry", fromlist=["FAMILIES"]).FAMILIES))
def test_decode_check_defaults_are_valid_for_every_family(name):
    """With no --frames/--size, decode-check picks the family's first valid count >= 17 frames whose latent streams in
    two steps or more, and a size that tiles in two along each axis: what its rules accept, without loading a model."""
    from vaestudy.cli import CHECK_FRAMES, _check_defaults
    from vaestudy.decode.streams import stream_plan
    from vaestudy.decode.tiled import default_tile_plan
    from vaestudy.registry import get_family

    fam = get_family(name)
    frames, size = _check_defaults(fam, None, None, overlap=2)
    fam.check_frames(frames)
    h, w = (int(v) for v in size.split("x"))
    _, t, lh, lw = fam.latent_shape(frames, h, w)
    assert frames >= CHECK_FRAMES and len(stream_plan(fam, t)) >= 2
    shorter = [f for f in fam.valid_frame_counts(frames - 1) if f >= CHECK_FRAMES]  # none of them streams in two steps
    assert not [f for f in shorter if len(stream_plan(fam, fam.latent_shape(f, h, w)[1])) >= 2]
    plan = default_tile_plan((lh, lw), 2)
    assert (len(plan.starts(0)), len(plan.starts(1))) == (2, 2)
    assert _check_defaults(fam, 9, "32x32", overlap=2) == (9, "32x32")  # what the reader gives is kept as given
