"""FaceNet (Inception-ResNet-v1) in torch, laid out so facenet-pytorch's released state dicts load as they are.

The layout follows the published network (Szegedy et al. 2016, as trained by David Sandberg's
facenet and ported by facenet-pytorch): stem, 5 x Block35 (scale 0.17), Mixed_6a, 10 x Block17
(0.10), Mixed_7a, 5 x Block8 (0.20), a last Block8 without ReLU, average pooling, dropout, a
1792 -> 512 linear layer without bias, BatchNorm1d and L2 normalisation. Parameter names match
facenet-pytorch's ``InceptionResnetV1``; its classifier head (``logits.*``) is dropped on load.
Input: aligned 160x160 RGB crops, scaled as ``(x - 127.5) / 128``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelNotInstalledError
from ._checkpoint import load_torch_weights
from .base import import_framework

__all__ = ["INPUT_SIZE", "FacenetRuntime", "build_inception_resnet_v1"]

INPUT_SIZE = 160
EMBEDDING_DIM = 512


def _torch() -> Any:
    return import_framework("torch", package="torch", extra="torch", purpose="FaceNet embeddings")


def build_inception_resnet_v1(dropout: float = 0.6) -> Any:
    """A fresh, randomly initialised InceptionResnetV1 whose ``forward`` returns L2-normalised 512-D vectors."""
    torch = _torch()
    nn = torch.nn

    class BasicConv2d(nn.Module):  # type: ignore[misc]
        def __init__(self, cin: int, cout: int, kernel: Any, stride: int, padding: Any = 0) -> None:
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, kernel_size=kernel, stride=stride, padding=padding, bias=False)
            self.bn = nn.BatchNorm2d(cout, eps=0.001, momentum=0.1, affine=True)
            self.relu = nn.ReLU(inplace=False)

        def forward(self, x: Any) -> Any:
            return self.relu(self.bn(self.conv(x)))

    class Block35(nn.Module):  # type: ignore[misc]
        def __init__(self, scale: float) -> None:
            super().__init__()
            self.scale = scale
            self.branch0 = BasicConv2d(256, 32, 1, 1)
            self.branch1 = nn.Sequential(BasicConv2d(256, 32, 1, 1), BasicConv2d(32, 32, 3, 1, 1))
            self.branch2 = nn.Sequential(
                BasicConv2d(256, 32, 1, 1), BasicConv2d(32, 32, 3, 1, 1), BasicConv2d(32, 32, 3, 1, 1)
            )
            self.conv2d = nn.Conv2d(96, 256, kernel_size=1, stride=1)
            self.relu = nn.ReLU(inplace=False)

        def forward(self, x: Any) -> Any:
            out = torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)
            return self.relu(self.conv2d(out) * self.scale + x)

    class Block17(nn.Module):  # type: ignore[misc]
        def __init__(self, scale: float) -> None:
            super().__init__()
            self.scale = scale
            self.branch0 = BasicConv2d(896, 128, 1, 1)
            self.branch1 = nn.Sequential(
                BasicConv2d(896, 128, 1, 1),
                BasicConv2d(128, 128, (1, 7), 1, (0, 3)),
                BasicConv2d(128, 128, (7, 1), 1, (3, 0)),
            )
            self.conv2d = nn.Conv2d(256, 896, kernel_size=1, stride=1)
            self.relu = nn.ReLU(inplace=False)

        def forward(self, x: Any) -> Any:
            out = torch.cat((self.branch0(x), self.branch1(x)), 1)
            return self.relu(self.conv2d(out) * self.scale + x)

    class Block8(nn.Module):  # type: ignore[misc]
        def __init__(self, scale: float = 1.0, no_relu: bool = False) -> None:
            super().__init__()
            self.scale = scale
            self.no_relu = no_relu
            self.branch0 = BasicConv2d(1792, 192, 1, 1)
            self.branch1 = nn.Sequential(
                BasicConv2d(1792, 192, 1, 1),
                BasicConv2d(192, 192, (1, 3), 1, (0, 1)),
                BasicConv2d(192, 192, (3, 1), 1, (1, 0)),
            )
            self.conv2d = nn.Conv2d(384, 1792, kernel_size=1, stride=1)
            if not no_relu:
                self.relu = nn.ReLU(inplace=False)

        def forward(self, x: Any) -> Any:
            out = torch.cat((self.branch0(x), self.branch1(x)), 1)
            out = self.conv2d(out) * self.scale + x
            return out if self.no_relu else self.relu(out)

    class Mixed6a(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.branch0 = BasicConv2d(256, 384, 3, 2)
            self.branch1 = nn.Sequential(
                BasicConv2d(256, 192, 1, 1), BasicConv2d(192, 192, 3, 1, 1), BasicConv2d(192, 256, 3, 2)
            )
            self.branch2 = nn.MaxPool2d(3, stride=2)

        def forward(self, x: Any) -> Any:
            return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)

    class Mixed7a(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.branch0 = nn.Sequential(BasicConv2d(896, 256, 1, 1), BasicConv2d(256, 384, 3, 2))
            self.branch1 = nn.Sequential(BasicConv2d(896, 256, 1, 1), BasicConv2d(256, 256, 3, 2))
            self.branch2 = nn.Sequential(
                BasicConv2d(896, 256, 1, 1), BasicConv2d(256, 256, 3, 1, 1), BasicConv2d(256, 256, 3, 2)
            )
            self.branch3 = nn.MaxPool2d(3, stride=2)

        def forward(self, x: Any) -> Any:
            return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)

    class InceptionResnetV1(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.conv2d_1a = BasicConv2d(3, 32, 3, 2)
            self.conv2d_2a = BasicConv2d(32, 32, 3, 1)
            self.conv2d_2b = BasicConv2d(32, 64, 3, 1, 1)
            self.maxpool_3a = nn.MaxPool2d(3, stride=2)
            self.conv2d_3b = BasicConv2d(64, 80, 1, 1)
            self.conv2d_4a = BasicConv2d(80, 192, 3, 1)
            self.conv2d_4b = BasicConv2d(192, 256, 3, 2)
            self.repeat_1 = nn.Sequential(*(Block35(0.17) for _ in range(5)))
            self.mixed_6a = Mixed6a()
            self.repeat_2 = nn.Sequential(*(Block17(0.10) for _ in range(10)))
            self.mixed_7a = Mixed7a()
            self.repeat_3 = nn.Sequential(*(Block8(0.20) for _ in range(5)))
            self.block8 = Block8(no_relu=True)
            self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
            self.dropout = nn.Dropout(dropout)
            self.last_linear = nn.Linear(1792, EMBEDDING_DIM, bias=False)
            self.last_bn = nn.BatchNorm1d(EMBEDDING_DIM, eps=0.001, momentum=0.1, affine=True)

        def forward(self, x: Any) -> Any:
            for layer in (self.conv2d_1a, self.conv2d_2a, self.conv2d_2b, self.maxpool_3a, self.conv2d_3b,
                          self.conv2d_4a, self.conv2d_4b, self.repeat_1, self.mixed_6a, self.repeat_2,
                          self.mixed_7a, self.repeat_3, self.block8, self.avgpool_1a):  # fmt: skip
                x = layer(x)
            x = self.last_bn(self.last_linear(self.dropout(x).flatten(1)))
            return torch.nn.functional.normalize(x, p=2, dim=1)

    return InceptionResnetV1()


def _weights_file(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in (".pt", ".pth") and p.is_file())
        if found:
            return found[0]
    raise ModelNotInstalledError(
        f"no FaceNet state dict (.pt or .pth) at {str(path)!r}",
        hint="import facenet-pytorch's 20180402-114759-vggface2.pt with `modeldeck models import`",
    )


def _embedding_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """The state dict without the classifier head (``logits.*``) that the released checkpoints carry."""
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    return {k.removeprefix("module."): v for k, v in state.items() if not k.startswith(("logits.", "module.logits."))}


class FacenetRuntime:
    """An InceptionResnetV1 in eval mode that embeds aligned 160x160 uint8 RGB crops."""

    name = "torch"

    def __init__(self, model: Any, device: str) -> None:
        self.torch = _torch()
        self.model = model.to(device).eval()
        self.device = device

    @classmethod
    def load(cls, path: Path, *, device: str = "cpu") -> FacenetRuntime:
        torch = _torch()
        file = _weights_file(Path(path))
        state = load_torch_weights(torch, file)
        if not isinstance(state, Mapping):
            raise ModelNotInstalledError(
                f"{str(file)!r} holds a {type(state).__name__}, not a FaceNet state dict",
                hint="save the weights with torch.save(model.state_dict(), path)",
            )
        model = build_inception_resnet_v1()
        missing, unexpected = model.load_state_dict(_embedding_state(state), strict=False)
        if missing or unexpected:
            raise ModelNotInstalledError(
                f"{str(file)!r} is not an InceptionResnetV1 state dict "
                f"(missing {len(missing)} keys, e.g. {missing[:3]}; "
                f"unexpected {len(unexpected)}, e.g. {unexpected[:3]})",
                hint="use facenet-pytorch's released vggface2 or casia-webface weights",
            )
        from .transformers import resolve_device

        return cls(model, str(resolve_device(device)))

    @property
    def input_size(self) -> int:
        return INPUT_SIZE

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """``(N, 512)`` float32 unit vectors for ``N`` aligned ``160x160x3`` uint8 RGB crops, in one pass."""
        if not crops:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        torch = self.torch
        batch = np.stack([np.asarray(c, dtype=np.float32) for c in crops])
        x = torch.from_numpy((batch - 127.5) / 128.0).permute(0, 3, 1, 2).contiguous().to(self.device)
        with torch.inference_mode():
            out = self.model(x)
        return out.float().cpu().numpy().astype(np.float32, copy=False)

    def memory_bytes(self) -> int | None:
        return sum(t.numel() * t.element_size() for t in self.model.state_dict().values())
