"""Configuration of the station pipeline (``[pipeline]`` in station.toml) and of ``yaguar detect``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from yaguar.config import Section
from yaguar.protocol.limits import MAX_FRAME_PIXELS

from .backends.options import AutoOptions, OnnxRuntimeOptions, OpenCLOptions
from .look import LookConfig
from .motion import MotionConfig


class PipelineConfig(Section):
    enabled: bool = Field(default=False, description="run motion, detection and classification on new frames")
    backend: Literal["onnxruntime", "opencl", "auto"] = Field(
        default="onnxruntime",
        description="inference backend; auto tries OpenCL and falls back to onnxruntime",
    )
    device: str | None = Field(default=None, max_length=120, description="backend device selector (OpenCL)")
    opencl_cache_dir: Path | None = Field(
        default=None, description="compiled OpenCL programs and tuning results; None: ~/.cache/yaguar/opencl"
    )
    opencl_fp16: bool = Field(
        default=False, description="store OpenCL tensors as fp16 (GPUs); compute stays fp32"
    )
    opencl_autotune: bool = Field(
        default=False, description="tune OpenCL tile sizes at first load (slow once, cached on disk)"
    )
    threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="inference threads per model; 0: the cores left after the decode workers (at least 1)",
    )
    model_dir: Path | None = Field(
        default=None, description="folder with the ONNX files and labels; None: the shared data models folder"
    )
    manifest_dir: Path | None = Field(default=None, description="extra manifests, beside the built-in ones")
    detector: str = Field(default="yolox_nano", min_length=1, max_length=200, description="detector manifest")
    detector_input: tuple[int, int] | None = Field(
        default=None,
        description="run the detector at [width, height] (multiples of 32) through a graph rewrite; "
        "None: the manifest's size",
    )
    classifiers: list[str] = Field(
        default_factory=lambda: ["mobilenet_v2_imagenet_quant", "mobilenet_v2_inat_bird_quant"],
        max_length=8,
        description="species classifier manifests, run on each animal box",
    )
    detection_threshold: float | None = Field(
        default=None, ge=0, le=1, description="minimum box confidence; None: the manifest's own"
    )
    verify_sha256: bool = Field(
        default=True, description="check model files against their manifests at start"
    )
    decode_min_side: int = Field(
        default=0,
        ge=0,
        le=20000,
        description="decode JPEGs reduced (libjpeg 1/2..1/8) but keep at least this longer side; 0: the "
        "detector's input size",
    )
    motion: MotionConfig = Field(default_factory=MotionConfig)
    look: LookConfig = Field(
        default_factory=LookConfig,
        description="closer passes, tiles, motion crops, fusion and the classifier's second opinion",
    )
    skip_without_motion: bool = Field(
        default=True, description="skip inference on frames where nothing moved (the reason is recorded)"
    )
    batch_size: int = Field(default=8, ge=1, le=256, description="frames analysed together, across cameras")
    batch_wait_ms: int = Field(default=30, ge=0, le=5000, description="how long to wait to fill a batch")
    queue_size: int = Field(default=32, ge=1, le=10_000, description="decoded frames waiting for inference")
    decode_workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="threads decoding JPEGs ahead of inference; 0: half the cores (at least 1)",
    )
    lease_s: float = Field(
        default=60.0,
        ge=1,
        le=86_400,
        description="a worker that stores nothing for this long loses its claims on frames, and other "
        "workers take them over; longer than one batch takes to analyse",
    )
    poll_interval_s: float = Field(
        default=5.0, gt=0, le=3600, description="look for pending frames this often"
    )
    event_gap_s: float = Field(
        default=60.0, ge=0, le=86_400, description="frames closer than this form one event"
    )
    region: str = Field(default="colombia", description="species list for geofencing; 'none' turns it off")
    extra_species: list[str] = Field(default_factory=list, description="scientific names added to the region")
    max_pixels: int = Field(
        default=MAX_FRAME_PIXELS, ge=10_000, le=500_000_000, description="refuse bigger headers"
    )

    def backend_options(self) -> OnnxRuntimeOptions | OpenCLOptions | AutoOptions:
        """The typed options of the chosen backend, from the flat ``[pipeline]`` keys."""
        ort = OnnxRuntimeOptions(threads=self.inference_threads())
        opencl = OpenCLOptions(
            device=self.device,
            cache_dir=self.opencl_cache_dir,
            fp16=self.opencl_fp16,
            autotune=self.opencl_autotune,
        )
        if self.backend == "onnxruntime":
            return ort
        return opencl if self.backend == "opencl" else AutoOptions(opencl=opencl, onnxruntime=ort)

    def decode_threads(self) -> int:
        return self.decode_workers or max(1, (os.cpu_count() or 1) // 2)

    def inference_threads(self) -> int:
        """Decoding runs beside inference: inference gets the cores the decoders leave (at least 1)."""
        return self.threads or max(1, (os.cpu_count() or 1) - self.decode_threads())
