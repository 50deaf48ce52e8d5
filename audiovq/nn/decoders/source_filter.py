"""A source-filter decoder (LPCNet, Valin & Skoglund 2019, with the envelope predicted from
the codes as in end-to-end LPCNet, Subramani et al. 2022): the spectral envelope comes from
the codes at the frame rate, linear prediction imposes it, and the sample-rate WaveNet models
only the excitation, with explicit pitch.

Frame rate, per code frame f (`frames`):
    [codeword, speaker embedding, normalised log-F0, voicing] ─convs─► h_f (C)
    h_f ─► log-area ratios (M) and log-gain of the envelope: PARCOR k = tanh(LAR / 2), so the
           all-pole filter is stable whatever the network outputs (nn/lpc.py)
    h_f ─► the excitation network's local conditioning (held over the frame's hop samples)
    [codeword (no gradient), speaker] ─convs─► normalised log-F0 and voicing (the F0 head:
           used when no F0 is given, e.g. for `sample`)

Sample rate (`ExcitationNet`): with s the pre-emphasised signal, p[n] = −Σ aₘ s[n − m] its
prediction from the frame's (interpolated) coefficients and e = s − p the excitation, the
WaveNet reads the sum of embeddings of µ-law(e[n−1]), µ-law(p[n]) and µ-law(s[n−1]) and
outputs a categorical over µ-law(e[n]); generation samples e[n] and makes s[n] = p[n] + e[n].

Training loss = NLL(e) + envelope_weight · the mean squared log-spectral distance between the
predicted envelope and the one analysed from the same pre-emphasised audio (by cepstra;
`envelope_loss: lar` uses the squared error of log-area ratios and log-gain instead) + the F0
head's loss. The envelope loss reaches the codebook and the encoder: it is what asks the codes
to carry the phones.

Pitch: F0 per code frame in Hz (0 = unvoiced), normalised per speaker with statistics held in
the module (`pitch_mean`, `pitch_std`: log Hz, set from the training corpus) so a checkpoint
carries every speaker's.

The ablation of issue #20 switches each half off (`model.decoder.lpc`, `model.decoder.pitch`):
without linear prediction p[n] = 0, so the WaveNet models the signal itself (e = s) and there is
no envelope head or loss; without pitch the frame network sees no F0, nothing is sharpened and
there is no F0 head.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...audio import mu_law_encode
from ...devices import torch_threads
from ..distributions import Categorical
from ..emphasis import deemphasis, preemphasis
from ..lpc import analyse, cepstrum, from_parcor, log_spectral_distance, prediction
from ..wavenet import WaveNet
from . import register
from .base import Decoder, DecoderOutput, StepInputs
from .frames import FrameRecord
from .windows import stitch

LAR_LIMIT = 6.0  # |log-area ratio| ≤ 6: |k| ≤ tanh 3 = 0.995
# The direct-form coefficients of a high-order envelope near the unit circle are ill-conditioned:
# rounded to float32 they can put poles outside it. They are kept in float64, and so are the
# filter's history and p[n] in generation (12 multiply-adds a sample).


class _Residual(nn.Module):
    """x + ReLU(conv(x)): a dilated layer of the frame network (deep stacks train as residuals)."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.conv(x))


def _convs(inputs: int, channels: int, layers: int, dilation: int = 1) -> nn.Sequential:
    """Frames (B, inputs, F) → (B, channels, F): `layers` convolutions of kernel 3. With
    `dilation` d > 1, layer i ≥ 1 is a residual layer dilated d ** i (d = 2, 6 layers: ±63
    frames of context, 252 ms at hop 32); the context each side is what a streamed window
    must read ahead (generation's margin is the sum of the paddings)."""
    blocks: list[nn.Module] = []
    for i in range(max(layers, 1)):
        if i == 0 or dilation == 1:  # (the layout checkpoints without dilation have)
            blocks += [nn.Conv1d(inputs if i == 0 else channels, channels, 3, padding=1), nn.ReLU()]
        else:
            blocks.append(_Residual(channels, dilation ** i))
    return nn.Sequential(*blocks)


class ExcitationNet(nn.Module):
    """The WaveNet over the excitation, its inputs embedded from e[n−1], p[n] and s[n−1]."""

    def __init__(self, cfg, local_channels: int, order: int, hop: int):
        super().__init__()
        self.wavenet = WaveNet.from_config(cfg, cfg.classes, cfg.classes, local_channels, 0)
        R = cfg.residual_channels
        self.embed_p, self.embed_s = nn.Embedding(cfg.classes, R), nn.Embedding(cfg.classes, R)
        self.classes, self.order, self.hop = cfg.classes, order, hop

    def embedded(self, e_prev, p, s_prev) -> torch.Tensor:
        """Classes (B, T) each → (B, T, R)."""
        return self.wavenet.embed(e_prev) + self.embed_p(p) + self.embed_s(s_prev)

    def forward(self, e_prev, p, s_prev, local) -> torch.Tensor:
        return self.wavenet(None, local, None, embedded=self.embedded(e_prev, p, s_prev))

    # what the generation engine reads of any network (its stepping: generate/renderers/network.py)
    @property
    def input_classes(self) -> int:
        return self.classes

    @property
    def output_channels(self) -> int:
        return self.classes


def sharpening(voicing: torch.Tensor) -> torch.Tensor:
    """LPCNet's pitch-dependent sharpening factor β = 1 + max(0, 1.5 c − 0.5) (Valin &
    Skoglund 2019, section 3.3) of voicing strength c ∈ [0, 1] (…) (1 or 0 for a tracked F0,
    the F0 head's probability for a predicted one; LPCNet uses the pitch correlation): the
    excitation's logits are multiplied by β, so a voiced frame's distribution is up to twice
    as sharp and an unvoiced one (β = 1) is left as it is."""
    return 1.0 + (1.5 * voicing - 0.5).clamp_min(0.0)


class FrameRecords:
    """The frame half's output for generation, one `FrameRecord` (nn/decoders/frames.py) per
    item and span of frames (`record`), computed a window of WINDOW frames at a time from the
    codes with a margin of real frames wider than the frame-rate convolutions' reach (so a
    long file's frame outputs never exist whole, and each window equals the whole signal's);
    each item's frames are those of its own first `frames[b]` frames, as if generated alone.
    Also the excitation network's `LocalSource`: its conditioning held over hop samples
    (`blocks`).

    F0: given per item (`pitch`, Hz per frame, 0 unvoiced; voicing 1 where F0 > 0), or the F0
    head's with its voicing probability, multiplied by `f0_scale` (a shift in semitones is
    2^(s/12)): the probability is carried through a shift, so sharpening does not change with it.
    """

    WINDOW = 1024  # frames per window

    def __init__(self, decoder: "SourceFilterDecoder", codebook, indices: torch.Tensor, speaker: torch.Tensor,
                 frames: list[int], pitch: list | None = None, f0_scale: float = 1.0):
        self.decoder, self.codebook, self.indices, self.speaker = decoder, codebook, indices, speaker
        self.lengths, self.pitch, self.hold, self.f0_scale = frames, pitch, decoder.hop, float(f0_scale)
        nets = [net for net in (decoder.frame_net, decoder.f0_net) if net is not None]
        convs = [m for net in nets for m in net.modules() if isinstance(m, nn.Conv1d)]
        self.reach = sum(m.padding[0] for m in convs)  # the F0 head feeds the frame network: both reaches
        self._windows: dict[int, dict[int, FrameRecord]] = {}  # item → {window: record}, the last two

    @torch.no_grad()
    def _window(self, b: int, w: int) -> FrameRecord:
        windows = self._windows.setdefault(b, {})
        if w not in windows:
            with torch_threads(1):  # one thread, whoever asks: the convolutions' last frames are
                windows[w] = self._compute(b, w)  # summed otherwise on more threads (1 ulp)
            for old in [ww for ww in windows if ww < w - 1]:
                del windows[old]
        return windows[w]

    def _compute(self, b: int, w: int) -> FrameRecord:
        """Window w of item b: frames w·WINDOW … (w + 1)·WINDOW − 1."""
        W, d, n = self.WINDOW, self.decoder, self.lengths[b]
        lo, hi = max(0, w * W - self.reach), min(n, (w + 1) * W + self.reach)
        C, M, device = d.frame_net[0].out_channels, d.order, self.indices.device
        h = torch.zeros(C, W, device=device)
        lpc = torch.zeros(W, M, dtype=torch.float64, device=device)
        beta = torch.ones(W, device=device)
        gain, pitch, voicing = (torch.zeros(W, dtype=torch.float64, device=device) for _ in range(3))
        if w * W < n:
            codewords = self.codebook.lookup(self.indices[b:b + 1, lo:hi])
            spk = self.speaker[b:b + 1]
            if not d.needs_pitch:  # (an ablation's decoder: no F0, nothing sharpened)
                f0 = prob = None
            elif self.pitch is None:  # the F0 head's, with its voicing probability
                f0, prob = d.predicted_pitch(codewords, spk)
                if self.f0_scale != 1.0:
                    f0 = f0 * self.f0_scale
            else:
                track = np.zeros(hi - lo, np.float32)
                given = np.asarray(self.pitch[b], dtype=np.float32)[lo:hi]
                track[:given.size] = given
                f0 = torch.from_numpy(track)[None].to(codewords.device)
                prob = (f0 > 0).float()
            hw, lar, log_gain = d.frames(codewords, spk, f0)
            keep = slice(w * W - lo, min(hi, (w + 1) * W) - lo)
            k = keep.stop - keep.start
            h[:, :k] = hw[0, :, keep]
            if d.use_lpc:  # (without it every coefficient stays 0: p[n] = 0)
                lpc[:k] = d.lpc_of(lar)[0, keep]
                gain[:k] = torch.exp(log_gain[0, keep].double())
            if f0 is not None:
                pitch[:k] = f0[0, keep].double()
                voicing[:k] = prob[0, keep].double()
            if d.sharpen and prob is not None:
                beta[:k] = sharpening(prob[0, keep])
            lpc[k:] = lpc[k - 1]  # past the item's end (k < W): its last frame's envelope
        else:  # wholly past the end
            lpc[:] = self._window(b, (n - 1) // W).envelope[(n - 1) % W]
        return FrameRecord(w * W, h, lpc, gain, pitch, voicing, beta)

    def record(self, b: int, f0: int, f1: int) -> FrameRecord:
        """Frames f0 … f1 − 1 of item b."""
        def field(name: str) -> torch.Tensor:  # stitched along time, the last axis of (…, W)
            lasts = lambda k: (lambda x: x if name == "conditioning" else x.reshape(W, -1).T)(
                getattr(self._window(b, k), name))
            out = stitch(lasts, f0, f1, W)
            return out if name == "conditioning" else out.T.reshape((f1 - f0,) + shapes[name])

        W = self.WINDOW
        shapes = {"envelope": (self.decoder.order,), "gain": (), "f0": (), "voicing": (), "sharpening": ()}
        return FrameRecord(f0, field("conditioning"), *(field(n) for n in shapes))

    def blocks(self, b0: int, b1: int, items: list[int]) -> torch.Tensor:
        """Conditioning of frames b0 … b1 − 1: (I, C, b1 − b0) (the `LocalSource` contract)."""
        return torch.stack([stitch(lambda k: self._window(b, k).conditioning, b0, b1, self.WINDOW) for b in items])


@register
class SourceFilterDecoder(Decoder):
    """`cfg` is the config's `model.decoder` (a DecoderConfig)."""

    kind = "source_filter"
    needs_pitch = True

    def __init__(self, cfg, code_dim: int, hop: int, num_speakers: int, sample_rate: int):
        super().__init__(hop, sample_rate, cfg.classes, cfg.preemphasis, cfg.input_noise)
        C, M = cfg.cond_channels, cfg.lpc_order
        self.order, self.envelope_weight = M, float(cfg.envelope_weight)
        self.envelope_loss = getattr(cfg, "envelope_loss", "lar")
        self.use_lpc = bool(getattr(cfg, "lpc", True))
        self.needs_pitch = bool(getattr(cfg, "pitch", True))  # (an instance's, over the class's)
        self.sharpen = True  # generation: pitch-dependent sharpening (off to compare steps with `forward`)
        self.output = Categorical(cfg.classes)
        self.speakers = nn.Embedding(num_speakers, cfg.speaker_dim)
        # (a switched-off part has no module: unused parameters would stall DDP's reducer)
        self.frame_net = _convs(code_dim + cfg.speaker_dim + 2 * self.needs_pitch, C, cfg.cond_layers,
                                int(getattr(cfg, "cond_dilation", 1)))
        self.envelope = nn.Conv1d(C, M + 1, 1) if self.use_lpc else None
        self.f0_net = (nn.Sequential(_convs(code_dim + cfg.speaker_dim, C // 2, 2), nn.Conv1d(C // 2, 2, 1))
                       if self.needs_pitch else None)
        # without it (model.decoder.network=false) the frame half is the whole decoder: its
        # envelope and F0 losses train it and the codes, the world or pulses renderer voices it
        self.network = ExcitationNet(cfg, C, M, hop) if getattr(cfg, "network", True) else None
        self.register_buffer("pitch_mean", torch.full((num_speakers,), math.log(150.0)))
        self.register_buffer("pitch_std", torch.full((num_speakers,), 0.2))

    # ------------------------------------------------------------ frame rate
    def set_pitch_stats(self, stats: list) -> None:
        """Per-speaker log-F0 statistics (data/pitch.PitchStats, in embedding order)."""
        self.pitch_mean.copy_(torch.tensor([s.mean for s in stats]))
        self.pitch_std.copy_(torch.tensor([s.std for s in stats]))

    def pitch_features(self, f0: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """F0 (B, F) Hz → (B, 2, F): speaker-normalised log-F0 (0 unvoiced) and voicing."""
        voiced = f0 > 0
        z = (torch.log(f0.clamp_min(1.0)) - self.pitch_mean[speaker, None]) / self.pitch_std[speaker, None]
        return torch.stack([torch.where(voiced, z, torch.zeros_like(z)), voiced.to(z.dtype)], 1)

    def pitch_statistics(self, speaker: int) -> tuple[float, float]:
        """(mean, standard deviation) of a training speaker's log-F0 (log Hz), as trained with."""
        return float(self.pitch_mean[speaker]), float(self.pitch_std[speaker])

    def predicted_pitch(self, codewords: torch.Tensor, speaker: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The F0 head's (F0 (B, F) Hz, 0 unvoiced; voicing probability (B, F)), one pass."""
        z, v = self._f0_head(codewords, speaker)
        f0 = torch.exp(self.pitch_mean[speaker, None] + z * self.pitch_std[speaker, None])
        return torch.where(v > 0, f0, torch.zeros_like(f0)), torch.sigmoid(v)

    def _f0_head(self, codewords, speaker):
        spk = self.speakers(speaker)[:, :, None].expand(-1, -1, codewords.shape[-1])
        out = self.f0_net(torch.cat([codewords.detach(), spk], 1))  # prosody from the codes, not into them
        return out[:, 0], out[:, 1]

    def frames(self, codewords: torch.Tensor, speaker: torch.Tensor, f0: torch.Tensor | None):
        """(conditioning (B, C, F), LAR (B, M, F), log-gain (B, F)); the last two None without
        linear prediction, and `f0` (B, ≥ F) Hz is unused without pitch."""
        Fr = codewords.shape[-1]
        spk = self.speakers(speaker)[:, :, None].expand(-1, -1, Fr)
        inputs = [codewords, spk] + ([self.pitch_features(f0[:, :Fr], speaker)] if self.needs_pitch else [])
        h = self.frame_net(torch.cat(inputs, 1))
        if not self.use_lpc:
            return h, None, None
        env = self.envelope(h)
        return h, env[:, :-1].clamp(-LAR_LIMIT, LAR_LIMIT), env[:, -1]

    @staticmethod
    def lpc_of(lar: torch.Tensor) -> torch.Tensor:
        """LAR (B, M, F) → LPC (B, F, M) float64, stable by construction."""
        return from_parcor(torch.tanh(lar.transpose(1, 2).double() / 2))

    # ------------------------------------------------------------ training
    def forward(self, wav, codewords, speaker, noise=None, pitch=None) -> DecoderOutput:
        if pitch is None and self.needs_pitch:
            raise ValueError("the source-filter decoder is trained with F0 per code frame (batch.pitch)")
        T = wav.shape[-1]
        signal = preemphasis(wav, self.preemphasis)
        h, lar, log_gain = self.frames(codewords, speaker, pitch)
        scalars = {}
        if self.use_lpc:
            with torch.no_grad():
                true = analyse(signal, self.hop, self.order)
                limit = math.tanh(LAR_LIMIT / 2)
                lar_true = 2 * torch.atanh(true.parcor.clamp(-limit, limit)).transpose(1, 2)
                log_gain_true = torch.log(true.gain.clamp_min(1e-5))
            lpc = self.lpc_of(lar)
            envelope = self._envelope_distance(lar, lpc, log_gain, lar_true, true.lpc, log_gain_true)
            scalars["envelope"] = envelope.detach()
        else:
            envelope = signal.new_zeros(())
        if self.network is not None:
            nll, logits = self._excitation_nll(signal, lpc.detach() if self.use_lpc else None, h, noise)
            loss = nll
        else:  # the frame half alone: its reconstruction loss is the envelope's (what validation watches)
            nll, logits = envelope, signal.new_zeros(signal.shape[0], 1, T)
            loss = signal.new_zeros(())  # (the envelope is added below, once)
        f0_loss = nll.new_zeros(())
        if self.needs_pitch:
            z, v = self._f0_head(codewords, speaker)
            feats = self.pitch_features(pitch[:, :codewords.shape[-1]], speaker)
            voiced = feats[:, 1]
            f0_loss = F.binary_cross_entropy_with_logits(v, voiced) + (
                ((z - feats[:, 0]) ** 2 * voiced).sum() / voiced.sum().clamp_min(1))
            scalars["f0_head"] = f0_loss.detach()
        loss = loss + self.envelope_weight * envelope + f0_loss
        return DecoderOutput(loss, nll, logits, scalars)

    def _excitation_nll(self, signal, lpc, h, noise):
        """(NLL per sample, logits (B, classes, T)) of the excitation network on the pre-emphasised
        signal (B, T), the excitation taken with the predicted envelope lpc (B, F, M) as generated
        (None without linear prediction: p = 0), h the frame conditioning (B, C, F)."""
        T = signal.shape[-1]
        p = (prediction(signal.double(), lpc, self.hop).float().clamp(-1, 1) if lpc is not None
             else torch.zeros_like(signal))
        e = (signal - p).clamp(-1, 1)
        e_cls, p_cls, s_cls = (mu_law_encode(x, self.classes) for x in (e, p, signal))
        e_prev, s_prev = self.noisy(e_cls, noise), self.noisy(s_cls, noise)
        silence = self.first_input
        e_prev, s_prev = (F.pad(x[:, :-1], (1, 0), value=silence) for x in (e_prev, s_prev))
        local = h.repeat_interleave(self.hop, -1)[..., :T]
        logits = self.network(e_prev, p_cls, s_prev, local)
        return self.output.nll(logits, e_cls), logits

    def _envelope_distance(self, lar, lpc, log_gain, lar_true, lpc_true, log_gain_true) -> torch.Tensor:
        """The frame-level envelope loss: "cepstrum", the mean squared log-spectral distance
        (nepers²) of the predicted envelope from the analysed one (what a listener's ear
        weighs: formant peaks and spectral tilt, not coefficient values); "lar", the squared
        error of log-area ratios and log-gain (the first runs, docs/source-filter.md)."""
        if self.envelope_loss == "lar":
            return F.mse_loss(lar, lar_true) + F.mse_loss(log_gain, log_gain_true)
        n = 4 * self.order  # cepstral terms: an order-M all-pole log-spectrum's decay past ~3M
        c = cepstrum(lpc, log_gain.double(), n)
        c_true = cepstrum(lpc_true.double(), log_gain_true.double(), n)
        return log_spectral_distance(c, c_true).mean().float()

    # ------------------------------------------------------------ generation
    def step_inputs(self, codebook, indices, speaker, frames, pitch=None, f0_scale: float = 1.0) -> StepInputs:
        """StepInputs(FrameRecords, None): the frame records are also the excitation network's
        local conditioning. `f0_scale` multiplies a predicted F0 (`FrameRecords`)."""
        device = self.speakers.weight.device
        return StepInputs(FrameRecords(self, codebook, indices.to(device), speaker.to(device), frames, pitch,
                                       f0_scale), None)

    FLOOR = 0.002  # LPCNet's probability floor on the (sharpened) excitation distribution

    def sampler(self, temperature: float, top_k: int = 0, floor: float = 0.0):
        """The sampling rule with LPCNet's probability floor (section 3.3: classes under 0.2 %
        are never drawn, which keeps a rare wild excitation sample from making a click); a
        caller's own floor replaces it."""
        return super().sampler(temperature, top_k, floor or self.FLOOR)

    def generated(self, classes, values):
        return values  # the signal s = p + e, made by the steps

    def to_waveform(self, values, filter=None) -> np.ndarray:
        wav = np.asarray(values, dtype=np.float32)
        wav = filter(wav) if filter is not None else deemphasis(wav, self.preemphasis)
        return np.clip(wav, -1.0, 1.0)
