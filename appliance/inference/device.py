"""Where models run: CUDA when asked for or (auto) when the installed engines can use it, else the CPU.

ONNX Runtime and llama.cpp are checked separately: a box may have the CUDA provider for ONNX Runtime but a CPU
build of llama.cpp, or the reverse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from appliance.errors import ConfigError

log = logging.getLogger("appliance.inference")

ALL_LAYERS = -1  # llama.cpp: offload every layer


@dataclass(frozen=True)
class DeviceChoice:
    setting: str
    onnx: Literal["cuda", "cpu"]
    llama: Literal["cuda", "cpu"]
    onnx_providers: list[str]
    n_gpu_layers: int
    reason: str

    def describe(self) -> str:
        return f"device={self.setting}: ONNX Runtime on {self.onnx}, llama.cpp on {self.llama} ({self.reason})"


def onnx_cuda_available() -> bool:
    try:
        import onnxruntime
    except ImportError:
        return False
    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def llama_gpu_available() -> bool:
    try:
        import llama_cpp
    except ImportError:
        return False
    return bool(llama_cpp.llama_supports_gpu_offload())


def choose_device(setting: str) -> DeviceChoice:
    onnx_gpu, llama_gpu = onnx_cuda_available(), llama_gpu_available()
    if setting == "cpu":
        onnx, llama, reason = "cpu", "cpu", "forced by the device setting"
    elif setting == "cuda":
        if not (onnx_gpu or llama_gpu):
            raise ConfigError(
                "device=cuda, but neither ONNX Runtime's CUDA provider (onnxruntime-gpu) nor a CUDA build of "
                "llama-cpp-python is installed"
            )
        onnx = "cuda" if onnx_gpu else "cpu"
        llama = "cuda" if llama_gpu else "cpu"
        reason = "forced; engines without CUDA support stay on the CPU"
    elif setting == "auto":
        onnx = "cuda" if onnx_gpu else "cpu"
        llama = "cuda" if llama_gpu else "cpu"
        reason = "detected" if (onnx_gpu or llama_gpu) else "no CUDA-capable engine installed"
    else:
        raise ConfigError(f"unknown device {setting!r}; use auto, cpu or cuda")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if onnx == "cuda" else ["CPUExecutionProvider"]
    choice = DeviceChoice(setting, onnx, llama, providers, ALL_LAYERS if llama == "cuda" else 0, reason)  # type: ignore[arg-type]
    log.info("device chosen", extra={"fields": {"onnx": choice.onnx, "llama": choice.llama, "setting": setting}})
    return choice
