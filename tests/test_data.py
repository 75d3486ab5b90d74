"""Frames for the study: real clips, panned stills with exact camera paths, seeded training crops."""

import numpy as np
import pytest
import torch

from vaestudy import data

# ---- real clips -----------------------------------------------------------------------------

def test_clip_info_matches_decoded_frames():
    info = data.clip_info("carphone")
    frames = data.read_frames("carphone")
    assert frames.shape == (info["frames"], info["height"], info["width"], 3)
    assert frames.dtype == np.uint8
    frames[0, 0, 0, 0] = 7  # read_frames hands out a copy: the process-wide cache stays untouched
    assert data.read_frames("carphone")[0, 0, 0, 0] == data._decoded("carphone")[0, 0, 0, 0]


def test_load_clip_shape_range_and_crop():
    x = data.load_clip("carphone", 5, (32, 48), start=3, stride=2, crop=(10, 20))
    assert x.shape == (3, 5, 32, 48) and x.dtype == torch.float32
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    raw = data.read_frames("carphone")[3:12:2, 10:42, 20:68]
    np.testing.assert_allclose(x.permute(1, 2, 3, 0).numpy(), raw / 127.5 - 1.0, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"name": "nosuchclip", "frames": 5, "size": (32, 32)}, ["clip='nosuchclip'", "bikes"]),
        ({"name": "carphone", "frames": 200, "size": (32, 32)}, ["frames=200", "120", "valid frames are 1..120"]),
        ({"name": "carphone", "frames": 9, "size": (32, 32), "start": 115}, ["frames=9", "start=115"]),
        ({"name": "carphone", "frames": 0, "size": (32, 32)}, ["frames=0"]),
        ({"name": "carphone", "frames": 5, "size": (32, 32), "stride": 0}, ["stride=0"]),
        ({"name": "carphone", "frames": 5, "size": (512, 32)}, ["size=(512, 32)"]),
        ({"name": "carphone", "frames": 5, "size": (32, 32), "crop": (140, 0)}, ["crop=(140, 0)"]),
        ({"name": "carphone", "frames": 5, "size": (32, 32), "scale": 0}, ["scale=0"]),
    ],
)
def test_load_clip_bad_input_names_parameter(kwargs, words):
    with pytest.raises(ValueError) as e:
        data.load_clip(**kwargs)
    for w in words:
        assert w in str(e.value)


# ---- stills moved by a known camera path ----------------------------------------------------

def test_still_whole_pixel_path_is_an_exact_shift():
    video, offsets = data.still_with_camera_path("astronaut", 6, (48, 64), shift_per_frame=(1, -2))
    assert video.shape == (3, 6, 48, 64)
    np.testing.assert_array_equal(offsets, np.array([[t, -2 * t] for t in range(6)], dtype=np.float32))
    # frame t at (y, x) shows what frame 0 shows at (y + t*dy, x + t*dx)
    for t in range(1, 6):
        dy, dx = int(offsets[t, 0]), int(offsets[t, 1])
        assert torch.equal(video[:, t, : 48 - dy, -dx:], video[:, 0, dy:, : 64 + dx])


def test_still_subpixel_path_is_recovered_by_phase_correlation():
    from skimage.registration import phase_cross_correlation

    video, offsets = data.still_with_camera_path("coffee", 4, (96, 96), shift_per_frame=(0.5, 1.25))
    g = video.mean(0).numpy()
    for t in (1, 3):
        est, _, _ = phase_cross_correlation(g[0], g[t], upsample_factor=20)
        # skimage returns the shift that registers frame t onto frame 0: the camera offset
        np.testing.assert_allclose(est, offsets[t], atol=0.3)  # bilinear resampling + non-periodic crop


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"name": "lena"}, ["still='lena'", "astronaut"]),
        ({"name": "chelsea", "shift_per_frame": (0, 120)}, ["shift_per_frame=(0, 120)", "300x451"]),
        ({"name": "chelsea", "origin": (-1, 0)}, ["origin=(-1, 0)", "valid top"]),
        ({"name": "chelsea", "size": (0, 8)}, ["size=(0, 8)"]),
        ({"name": "chelsea", "frames": 0}, ["frames=0"]),
    ],
)
def test_still_bad_input_names_parameter(kwargs, words):
    args = {"name": "chelsea", "frames": 5, "size": (32, 32)} | kwargs
    with pytest.raises(ValueError) as e:
        data.still_with_camera_path(**args)
    for w in words:
        assert w in str(e.value)


def test_every_listed_still_loads_offline_as_rgb():
    for name in data.STILLS:
        img = data.load_still(name, 0.25)
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.float32
        assert 0.0 <= img.min() and img.max() <= 1.0


# ---- seeded training crops and held-out crops -----------------------------------------------

@pytest.fixture(scope="module")
def sampler():
    return data.CropSampler({"carphone": (1.0, 0.5)}, ("astronaut", "brick"), frames=5, size=(32, 32), seed=3,
                            still_fraction=0.5)


def test_sampler_crops_are_a_pure_function_of_seed_and_index(sampler):
    again = data.CropSampler({"carphone": (1.0, 0.5)}, ("astronaut", "brick"), frames=5, size=(32, 32), seed=3,
                             still_fraction=0.5)
    for i in (0, 1, 17, 1000):
        assert torch.equal(sampler.crop(i), again.crop(i))  # a resumed run sees the same crops
    assert not torch.equal(sampler.crop(0), sampler.crop(1))
    other_seed = data.CropSampler({"carphone": (1.0,)}, ("astronaut",), frames=5, size=(32, 32), seed=4)
    assert not torch.equal(sampler.crop(0), other_seed.crop(0))


def test_sampler_batch_shape_and_range(sampler):
    b = sampler.batch(2, 3)
    assert b.shape == (3, 3, 5, 32, 32)
    assert torch.equal(b[1], sampler.crop(7))
    assert float(b.min()) >= -1.0 and float(b.max()) <= 1.0
    d = sampler.describe()
    assert [c[:2] for c in d["clips"]] == [("carphone", 1.0), ("carphone", 0.5)]
    assert d["clips"][1][2] == [120, 72, 88]


def test_sampler_defaults_draw_the_crops_drawn_before_the_stride_options():
    """Pinned sums of crops drawn before max_stride/stride_fraction existed: the shipped cards' recipes still hold."""
    mixed = data.CropSampler({"carphone": (1.0, 0.5)}, ("astronaut", "brick"), frames=5, size=(32, 32), seed=3,
                             still_fraction=0.5)
    clips = data.CropSampler({"carphone": (1.0,)}, frames=17, size=(32, 32), seed=0, still_fraction=0.0)
    old_mixed = [1638.3328, -1885.1781, -2250.3674, -2420.81, -4407.433, 548.5437, -1749.0679, -3920.8506]
    old_clips = [-12918.8856, -6732.446, -14251.8737, -35462.0791, 2641.1065, -5806.9321, 49609.4041, -16576.1249]
    for sampler, old in ((mixed, old_mixed), (clips, old_clips)):
        got = [float(sampler.crop(i).double().sum()) for i in range(8)]
        assert got == pytest.approx(old, abs=2e-3)


def test_sampler_temporal_stride_options():
    frames = 17
    s = data.CropSampler({"carphone": (1.0,)}, frames=frames, size=(32, 32), seed=1, still_fraction=0.0,
                         max_stride=4, stride_fraction=1.0)
    specs = [s.crop_spec(i) for i in range(60)]
    assert {sp["stride"] for sp in specs} == {2, 3, 4}  # every crop strided, each allowed stride drawn
    src = s._clips[0][2]
    for i in (0, 1, 2):  # the crop is the spec's frames, strided, flipped as it says
        sp = specs[i]
        ref = src[sp["start"]:sp["start"] + (frames - 1) * sp["stride"] + 1:sp["stride"],
                  sp["top"]:sp["top"] + 32, sp["left"]:sp["left"] + 32]
        ref = ref[::-1] if sp["reversed"] else ref
        ref = ref[:, :, ::-1] if sp["flipped"] else ref
        assert torch.equal(s.crop(i), torch.from_numpy(ref.copy()).permute(3, 0, 1, 2) * 2.0 - 1.0)
    # carphone has 120 frames: a 17-frame crop fits strides up to 7, never more, however large max_stride is
    wide = data.CropSampler({"carphone": (1.0,)}, frames=frames, size=(32, 32), still_fraction=0.0,
                            max_stride=50, stride_fraction=1.0)
    strides = {wide.crop_spec(i)["stride"] for i in range(200)}
    assert max(strides) == 7 and min(strides) == 2
    never = data.CropSampler({"carphone": (1.0,)}, frames=frames, size=(32, 32), still_fraction=0.0,
                             max_stride=4, stride_fraction=0.0)
    assert {never.crop_spec(i)["stride"] for i in range(30)} == {1}
    assert s.describe()["max_stride"] == 4 and s.describe()["stride_fraction"] == 1.0


def test_sampler_scene_cuts():
    frames = 9
    s = data.CropSampler({"carphone": (1.0, 0.5)}, ("astronaut",), frames=frames, size=(32, 32), seed=2,
                         still_fraction=0.3, cut_fraction=1.0)
    no_cut = data.CropSampler({"carphone": (1.0, 0.5)}, ("astronaut",), frames=frames, size=(32, 32), seed=2,
                              still_fraction=0.3)
    cuts = [s.crop_spec(i)["cut_at"] for i in range(40)]
    assert min(cuts) >= 1 and max(cuts) <= frames - 1 and len(set(cuts)) > 3
    for i in range(4):
        sp, x = s.crop_spec(i), s.crop(i)
        c = sp["cut_at"]
        assert torch.equal(x[:, :c], no_cut.crop(i)[:, :c])  # before the cut: the crop drawn without cuts
        assert not torch.equal(x[:, c:], no_cut.crop(i)[:, c:])  # from the cut on: the second draw
    assert "cut_at" not in no_cut.crop_spec(0) and no_cut.describe()["cut_fraction"] == 0.0


def test_sampler_colour_orders():
    kw = dict(frames=9, size=(32, 32), seed=3, still_fraction=0.3, cut_fraction=0.5)
    s = data.CropSampler({"carphone": (1.0,)}, ("astronaut",), colour_fraction=1.0, **kw)
    plain = data.CropSampler({"carphone": (1.0,)}, ("astronaut",), **kw)
    orders = [tuple(s.crop_spec(i)["channels"]) for i in range(60)]
    assert set(orders) == {(0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)}  # never the identity
    for i in range(4):  # the same crop as without the option (its draw comes last), channels reordered
        sp = s.crop_spec(i)
        assert {k: v for k, v in sp.items() if k != "channels"} == plain.crop_spec(i)
        assert torch.equal(s.crop(i), plain.crop(i)[sp["channels"]])
    half = data.CropSampler({"carphone": (1.0,)}, ("astronaut",), colour_fraction=0.5, **kw)
    assert 15 < sum("channels" in half.crop_spec(i) for i in range(60)) < 45
    assert "channels" not in plain.crop_spec(0) and s.describe()["colour_fraction"] == 1.0


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"still_fraction": 1.5}, ["still_fraction=1.5"]),
        ({"stills": (), "still_fraction": 0.3}, ["still_fraction=0.3", "stills"]),
        ({"clips": {"carphone": (1.0,)}, "size": (200, 200), "still_fraction": 0.0}, ["size=(200, 200)", "carphone"]),
        ({"clips": {"carphone": (1.0,)}, "frames": 500, "still_fraction": 0.0}, ["frames=500"]),
        ({"max_stride": 0}, ["max_stride=0", ">= 1"]),
        ({"max_stride": 2.5}, ["max_stride=2.5", "integer"]),
        ({"stride_fraction": -0.1}, ["stride_fraction=-0.1", "[0, 1]"]),
        ({"cut_fraction": 2.0}, ["cut_fraction=2.0", "[0, 1]"]),
        ({"colour_fraction": -0.5}, ["colour_fraction=-0.5", "[0, 1]"]),
    ],
)
def test_sampler_bad_input(kwargs, words):
    args = {"clips": {"carphone": (1.0,)}, "stills": ("astronaut",), "frames": 5, "size": (32, 32)} | kwargs
    with pytest.raises(ValueError) as e:
        data.CropSampler(args.pop("clips"), **args)
    for w in words:
        assert w in str(e.value)


def test_eval_crops_fixed_and_inside_the_clip():
    x, specs = data.eval_crops("carphone", n=3, frames=9, size=(64, 64))
    y, _ = data.eval_crops("carphone", n=3, frames=9, size=(64, 64))
    assert torch.equal(x, y) and x.shape == (3, 3, 9, 64, 64)
    assert [s["start"] for s in specs] == [0, 56, 111]  # round(k * (120 - 9) / 2)
    for k, s in enumerate(specs):
        ref = data.load_clip("carphone", 9, (64, 64), start=s["start"], crop=(s["top"], s["left"]))
        assert torch.equal(x[k], ref)
    with pytest.raises(ValueError, match="n=0"):
        data.eval_crops("carphone", n=0)


def test_camera_path_fit_reads_position_along_the_true_path():
    size, shift, origin = (32, 48), (0.5, 1.5), (60.0, 80.0)
    video, _ = data.still_with_camera_path("astronaut", 9, size, shift, origin=origin)
    fit = data.camera_path_fit(video, "astronaut", size, shift, origin=origin)
    assert fit.tolist() == list(range(9))  # the exact video sits where its frames were rendered
    frozen = video[:, :1].repeat(1, 9, 1, 1)
    assert data.camera_path_fit(frozen, "astronaut", size, shift, origin=origin).tolist() == [0.0] * 9
    half, _ = data.still_with_camera_path("astronaut", 9, size, (0.25, 0.75), origin=origin)  # half speed: lags
    assert data.camera_path_fit(half, "astronaut", size, shift, origin=origin).tolist() == [t / 2 for t in range(9)]
    default = data.still_with_camera_path("astronaut", 9, size, shift)[0]  # default origin: the same path's
    assert data.camera_path_fit(default, "astronaut", size, shift).tolist() == list(range(9))
    with pytest.raises(ValueError, match=r"size=\(32, 32\) does not match"):
        data.camera_path_fit(video, "astronaut", (32, 32), shift)
    with pytest.raises(ValueError, match="step=0"):
        data.camera_path_fit(video, "astronaut", size, shift, step=0)
