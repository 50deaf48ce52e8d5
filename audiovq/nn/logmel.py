"""The log-mel spectrogram a mel encoder reads, one frame per `hop` samples, and the band
shift that perturbs it in training.

Frame i is centred on sample i·hop + hop/2, the middle of the hop it stands for (as the
waveform encoder's frame i summarises samples [i·hop, (i + 1)·hop)): a (B, T) input with T a
multiple of hop gives exactly T / hop frames. The signal is zero-padded at both ends, so a
window of a longer signal with margins wider than `n_fft` gives the same interior frames.
"""
from __future__ import annotations

import torch
import torchaudio.functional as AF
from torch import nn

FLOOR = 1e-5  # power floor before the log (−100 dB re full scale): silence stays finite


class LogMel(nn.Module):
    """Waveform (B, T) → log mel power (B, mels, ceil(T / hop)).

    Window 25 ms (Hann), FFT `n_fft` (the next power of two ≥ 2 windows, so the lowest mel
    bands still hold a bin), mel bands from 50 Hz to Nyquist (HTK scale)."""

    def __init__(self, sample_rate: int, hop: int, mels: int = 80):
        super().__init__()
        self.hop, self.mels = int(hop), int(mels)
        self.win = max(int(round(0.025 * sample_rate)), hop)
        self.n_fft = 1 << (2 * self.win - 1).bit_length()
        # derived from the settings, not learned: kept out of the state dict (checkpoints unchanged)
        self.register_buffer("window", torch.hann_window(self.win), persistent=False)
        fb = AF.melscale_fbanks(self.n_fft // 2 + 1, 50.0, sample_rate / 2, self.mels, sample_rate)
        self.register_buffer("fbank", fb, persistent=False)  # (bins, mels)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        frames = -(-wav.shape[-1] // self.hop)
        left = self.n_fft // 2 - self.hop // 2
        right = frames * self.hop - wav.shape[-1] + self.n_fft - left
        x = nn.functional.pad(wav.float(), (left, right))
        spec = torch.stft(x, self.n_fft, self.hop, self.win, self.window, center=False, return_complex=True)
        power = spec.real ** 2 + spec.imag ** 2  # (B, bins, frames + 1)
        mel = torch.matmul(power[..., :frames].transpose(1, 2), self.fbank).transpose(1, 2)
        return torch.log(mel.clamp_min(FLOOR))


def shift_bands(feats: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Features (B, M, F) moved up by `shift` (B,) int bands each (down where negative):
    out[b, m] = feats[b, clamp(m − shift[b], 0, M − 1)], the edge band repeated."""
    B, M, _ = feats.shape
    src = (torch.arange(M, device=feats.device)[None] - shift.to(feats.device)[:, None]).clamp(0, M - 1)
    return torch.gather(feats, 1, src[:, :, None].expand(-1, -1, feats.shape[-1]))
