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


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"still_fraction": 1.5}, ["still_fraction=1.5"]),
        ({"stills": (), "still_fraction": 0.3}, ["still_fraction=0.3", "stills"]),
        ({"clips": {"carphone": (1.0,)}, "size": (200, 200), "still_fraction": 0.0}, ["size=(200, 200)", "carphone"]),
        ({"clips": {"carphone": (1.0,)}, "frames": 500, "still_fraction": 0.0}, ["frames=500"]),
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
