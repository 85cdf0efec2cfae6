"""The student encoder network (torch), with the input contract of the aisfx teacher.

Input ``(batch, 100, 96)``: 100 frames of the normalised 96-band log-mel of
``models.preprocess``. Output ``(batch, dim)``, not normalised (the runtime
``Encoder`` L2-normalises). Five 3x3 conv layers with batch norm and ReLU, max-pooling
2x2 after the first three; then, per channel and mel band, the max and the mean over
time (frequency position is kept: it tells a kick from a hi-hat), and one linear layer.
Training-only heads (projection to the teacher's space) live in ``train.py``.
"""

from __future__ import annotations

import torch
from torch import nn

N_FRAMES = 100
N_MELS = 96
DEFAULT_WIDTHS = (24, 48, 96, 128, 128)


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class Student(nn.Module):
    def __init__(self, dim: int = 256, widths: tuple[int, ...] = DEFAULT_WIDTHS):
        super().__init__()
        w = widths
        self.features = nn.Sequential(
            *_conv(1, w[0]), nn.MaxPool2d(2),
            *_conv(w[0], w[1]), nn.MaxPool2d(2),
            *_conv(w[1], w[2]), nn.MaxPool2d(2),
            *_conv(w[2], w[3]),
            *_conv(w[3], w[4]),
        )
        n_bands = N_MELS // 8
        self.head = nn.Linear(2 * w[4] * n_bands, dim)
        self.dim = dim
        self.widths = widths

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        x = self.features(log_mel.unsqueeze(1))            # (b, c, t, f)
        pooled = torch.cat([x.amax(dim=2), x.mean(dim=2)], dim=1)   # (b, 2c, f)
        return self.head(pooled.flatten(1))


def load_student(path) -> Student:
    """The finished student saved by ``train.py`` (``student.pt`` / ``student_hn.pt``), in eval mode."""
    state = torch.load(path, weights_only=False)
    student = Student(state["dim"], tuple(state["widths"]))
    student.load_state_dict(state["student"])
    student.eval()
    return student
