"""vaestudy: decode experiments on real diffusers 3D VAEs (tiling, temporal chunking, streaming)."""

__version__ = "0.1.0"
