"""What happens to decoded frames during a benchmark: discarded, kept, or encoded to MP4 (PyAV)."""

from __future__ import annotations

import contextlib
import os
import tempfile

import torch

from vaestudy.bench.config import CONSUMERS


# ---------------------------------------------------------------------------------------------
# consumers: what happens to frames as they arrive
# ---------------------------------------------------------------------------------------------
class DiscardConsumer:
    """Drops every chunk (a sink that displays or sends frames and forgets them)."""

    def __call__(self, frames: torch.Tensor) -> None:
        pass

    def close(self) -> None:
        pass


class KeepConsumer:
    """Accumulates every chunk and concatenates at the end (what ``decode_*`` returns)."""

    def __init__(self):
        self.parts: list[torch.Tensor] = []
        self.video = None

    def __call__(self, frames: torch.Tensor) -> None:
        self.parts.append(frames)

    def close(self) -> None:
        self.video = torch.cat(self.parts, dim=2) if self.parts else None
        self.parts = []


class VideoConsumer:
    """Writes frames to an MP4 (PyAV, H.264 if available) as they arrive; frames in [-1, 1]."""

    def __init__(self, path: str | os.PathLike, fps: int = 16):
        import av

        self.path = str(path)
        self.fps = fps
        self.container = av.open(self.path, mode="w")
        self.stream = None
        self.frames_written = 0

    def __call__(self, frames: torch.Tensor) -> None:
        import av

        x = frames[0].detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
        x = x.permute(1, 2, 3, 0).contiguous().cpu().numpy()  # (n, h, w, 3)
        if self.stream is None:
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
            self.stream = self.container.add_stream(codec, rate=self.fps)
            self.stream.width, self.stream.height = x.shape[2] - x.shape[2] % 2, x.shape[1] - x.shape[1] % 2
            self.stream.pix_fmt = "yuv420p"
        for img in x:
            img = img[: self.stream.height, : self.stream.width]
            for packet in self.stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                self.container.mux(packet)
            self.frames_written += 1

    def close(self) -> None:
        if self.stream is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
        self.container.close()


@contextlib.contextmanager
def open_consumer(kind: str, folder: str | None = None):
    """A consumer of ``kind`` (discard, keep, video); a video goes to a temporary file, removed after."""
    if kind == "discard":
        yield DiscardConsumer()
    elif kind == "keep":
        yield KeepConsumer()
    elif kind == "video":
        fd, path = tempfile.mkstemp(suffix=".mp4", dir=folder)
        os.close(fd)
        try:
            yield VideoConsumer(path)
        finally:
            with contextlib.suppress(OSError):
                os.remove(path)
    else:
        raise ValueError(f"consumer={kind!r} is unknown; valid: {', '.join(CONSUMERS)}")
