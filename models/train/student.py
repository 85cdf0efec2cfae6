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
    def __init__(self, dim: int = 256, widths: tuple[int, ...] = DEFAULT_WIDTHS, time_segments: int = 1):
        """``time_segments`` > 1 adds, per channel and band, the mean over each of that many
        equal stretches of the block: blocks start at the onset, so this keeps the coarse
        shape of a sound in time (how a strum's strings follow each other) that the pooling
        over the whole block discards."""
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
        n_pooled = 2 + (time_segments if time_segments > 1 else 0)
        self.head = nn.Linear(n_pooled * w[4] * n_bands, dim)
        self.dim = dim
        self.widths = widths
        self.time_segments = time_segments

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        x = self.features(log_mel.unsqueeze(1))            # (b, c, t, f)
        parts = [x.amax(dim=2), x.mean(dim=2)]                       # (b, c, f) each
        if self.time_segments > 1:
            # fixed bounds (the block length is fixed): exports as plain slices
            n, k = N_FRAMES // 8, self.time_segments
            bounds = [i * n // k for i in range(k + 1)]
            parts += [x[:, :, a:b].mean(dim=2) for a, b in zip(bounds[:-1], bounds[1:])]
        return self.head(torch.cat(parts, dim=1).flatten(1))
