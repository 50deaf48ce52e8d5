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

from ...audio import mu_law_decode, mu_law_encode
from ..distributions import Categorical
from ..emphasis import deemphasis, preemphasis
from ..lpc import analyse, cepstrum, from_parcor, log_spectral_distance, predict_next, prediction
from ..wavenet import WaveNet
from . import register
from .base import Decoder, DecoderOutput, StepInputs

LAR_LIMIT = 6.0  # |log-area ratio| ≤ 6: |k| ≤ tanh 3 = 0.995
# The direct-form coefficients of a high-order envelope near the unit circle are ill-conditioned:
# rounded to float32 they can put poles outside it. They are kept in float64, and so are the
# filter's history and p[n] in generation (12 multiply-adds a sample).


def _convs(inputs: int, channels: int, layers: int) -> nn.Sequential:
    blocks: list[nn.Module] = []
    for i in range(max(layers, 1)):
        blocks += [nn.Conv1d(inputs if i == 0 else channels, channels, 3, padding=1), nn.ReLU()]
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

    # generation: the engine's contract (nn/decoders/base.py)
    @property
    def input_classes(self) -> int:
        return self.classes

    @property
    def output_channels(self) -> int:
        return self.classes

    def step_conditioning(self, local, glob, batch: int):
        return _Rows(self.wavenet.step_conditioning(local, None, batch), local)

    def incremental(self, batch: int):
        return _Steps(self, batch)

    @property
    def fast_wavenet(self) -> WaveNet:
        """The WaveNet the fast CPU path runs (generate/fast.py), with `excitation` around it."""
        return self.wavenet

    def excitation(self, lanes: int):
        """The fast kernel's state for `lanes` lanes (generate/kernels.Excitation), as `_Steps`
        starts: silence before the first sample."""
        from ...generate.kernels import Excitation
        C = self.classes
        with torch.no_grad():
            table = lambda emb: np.ascontiguousarray(emb.weight.detach().cpu().float().numpy())
            decode = mu_law_decode(torch.arange(C), C).float().numpy()
        silence = int(mu_law_encode(torch.zeros(1), C).item())
        return Excitation(True, table(self.embed_p), table(self.embed_s), np.ascontiguousarray(decode),
                          np.zeros((lanes, self.order)), np.full(lanes, silence, np.int64), np.zeros(lanes),
                          int(self.hop))


def sharpening(voicing: torch.Tensor) -> torch.Tensor:
    """LPCNet's pitch-dependent sharpening factor β = 1 + max(0, 1.5 c − 0.5) (Valin &
    Skoglund 2019, section 3.3) of voicing strength c ∈ [0, 1] (…) (1 or 0 for a tracked F0,
    the F0 head's probability for a predicted one; LPCNet uses the pitch correlation): the
    excitation's logits are multiplied by β, so a voiced frame's distribution is up to twice
    as sharp and an unvoiced one (β = 1) is left as it is."""
    return 1.0 + (1.5 * voicing - 0.5).clamp_min(0.0)


class _Frames:
    """The frame-rate outputs of generation, computed a window of frames at a time from the
    codes (so a long file's (B, C, F) conditioning never exists whole): the excitation
    network's conditioning held over `hold` = hop samples (`blocks`, the engine's LocalSource),
    each frame's LPC and sharpening factor (`extras`), and its envelope gain and the F0 it was
    made with (`part`: what generate/pulses.py reads). Each window is computed with a
    margin of real frames wider than the frame-rate convolutions' reach, so it equals the
    whole signal's; each item's frames are those of its own first `frames[b]` frames, as if
    generated alone (past its end: zero conditioning, the last frame's LPC, no sharpening).
    """

    WINDOW = 1024  # frames per window
    PARTS = ("conditioning", "lpc", "sharpening", "gain", "f0")  # what a window holds, in order

    def __init__(self, decoder: "SourceFilterDecoder", codebook, indices: torch.Tensor, speaker: torch.Tensor,
                 frames: list[int], pitch: list | None):
        self.decoder, self.codebook, self.indices, self.speaker = decoder, codebook, indices, speaker
        self.lengths, self.pitch, self.hold = frames, pitch, decoder.hop
        nets = [net for net in (decoder.frame_net, decoder.f0_net) if net is not None]
        convs = [m for net in nets for m in net.modules() if isinstance(m, nn.Conv1d)]
        self.reach = sum(m.padding[0] for m in convs)  # the F0 head feeds the frame network: both reaches
        self._windows: dict[int, dict[int, tuple]] = {}  # item → {window: PARTS}, the last two

    @torch.no_grad()
    def _window(self, b: int, w: int) -> tuple:
        windows = self._windows.setdefault(b, {})
        if w not in windows:
            from ...generate.incremental import torch_threads
            with torch_threads(1):  # one thread, whoever asks: the convolutions' last frames are
                windows[w] = self._compute(b, w)  # summed otherwise on more threads (1 ulp)
            for old in [ww for ww in windows if ww < w - 1]:
                del windows[old]
        return windows[w]

    def _compute(self, b: int, w: int) -> tuple:
        """(conditioning (C, W), LPC (W, M) float64, sharpening (W,), gain (W,) float64, F0 (W,)
        Hz float64) of window w of item b."""
        W, d, n = self.WINDOW, self.decoder, self.lengths[b]
        lo, hi = max(0, w * W - self.reach), min(n, (w + 1) * W + self.reach)
        C, M = d.frame_net[0].out_channels, d.order
        h = torch.zeros(C, W, device=self.indices.device)
        lpc = torch.zeros(W, M, dtype=torch.float64, device=self.indices.device)
        beta = torch.ones(W, device=self.indices.device)
        gain, pitch = (torch.zeros(W, dtype=torch.float64, device=self.indices.device) for _ in range(2))
        if w * W < n:
            codewords = self.codebook.lookup(self.indices[b:b + 1, lo:hi])
            spk = self.speaker[b:b + 1]
            if not d.needs_pitch:  # (an ablation's decoder: no F0, nothing sharpened)
                f0 = voicing = None
            elif self.pitch is None:  # the F0 head's, with its voicing probability
                f0, voicing = d.predicted_pitch(codewords, spk)
            else:
                track = np.zeros(hi - lo, np.float32)
                given = np.asarray(self.pitch[b], dtype=np.float32)[lo:hi]
                track[:given.size] = given
                f0 = torch.from_numpy(track)[None].to(codewords.device)
                voicing = (f0 > 0).float()
            hw, lar, log_gain = d.frames(codewords, spk, f0)
            keep = slice(w * W - lo, min(hi, (w + 1) * W) - lo)
            k = keep.stop - keep.start
            h[:, :k] = hw[0, :, keep]
            if d.use_lpc:  # (without it every coefficient stays 0: p[n] = 0)
                lpc[:k] = d.lpc_of(lar)[0, keep]
                gain[:k] = torch.exp(log_gain[0, keep].double())
            if f0 is not None:
                pitch[:k] = f0[0, keep].double()
            if d.sharpen and voicing is not None:
                beta[:k] = sharpening(voicing[0, keep])
            lpc[k:] = lpc[k - 1]  # past the item's end (k < W): its last frame's envelope
        else:  # wholly past the end
            lpc[:] = self._window(b, (n - 1) // W)[1][(n - 1) % W]
        return h, lpc, beta, gain, pitch

    def part(self, b: int, name: str, f0: int, f1: int) -> torch.Tensor:
        """Frames f0 … f1 − 1 of item b's `name` (one of PARTS)."""
        return self._stitch(b, self.PARTS.index(name), f0, f1)

    def _stitch(self, b: int, part: int, f0: int, f1: int) -> torch.Tensor:
        """Frames f0 … f1 − 1 of one part (0 conditioning (C, ·), else (·, …): see PARTS)."""
        W = self.WINDOW
        pieces = [self._window(b, k)[part] for k in range(f0 // W, -(-f1 // W))]
        dim = -1 if part == 0 else 0
        cat = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim)
        return cat.narrow(dim, f0 - (f0 // W) * W, f1 - f0)

    def blocks(self, b0: int, b1: int, items: list[int]) -> torch.Tensor:
        """Conditioning of frames b0 … b1 − 1: (I, C, b1 − b0)."""
        return torch.stack([self._stitch(b, 0, b0, b1) for b in items])

    def extras(self, f0: int, f1: int, items: list[int]) -> torch.Tensor:
        """(I, f1 − f0, 2M + 1) float64: each frame's LPC, the next frame's, its sharpening factor."""
        out = []
        for b in items:
            lpc = self._stitch(b, 1, f0, f1 + 1)
            beta = self._stitch(b, 2, f0, f1).double()
            out.append(torch.cat([lpc[:-1], lpc[1:], beta[:, None]], -1))
        return torch.stack(out)


class _Rows:
    """Per-frame rows for the excitation steps: the WaveNet's gate conditioning (L·G), the
    frame's and next frame's LPC (2M) and the sharpening factor (1): (I, r, L·G + 2M + 1)
    float64 (exact for the float32 gates)."""

    def __init__(self, gates, frames: _Frames):
        self.gates, self.hold, self.frames = gates, gates.hold, frames

    def rows(self, t0, n, items=None):
        items = list(range(len(self.frames.lengths))) if items is None else items
        g = self.gates.rows(t0, n, items)  # (I, r, L, G)
        I, r = g.shape[:2]
        f0 = t0 // self.hold
        extra = self.frames.extras(f0, f0 + r, items)
        return torch.cat([g.reshape(I, r, -1).double(), extra], -1)  # float64: see LAR_LIMIT


class _Steps:
    """The PyTorch step of an ExcitationNet for a batch: its WaveNet's `TorchStack`, the last M
    samples of each item's signal, and p[n] of the step being sampled."""

    def __init__(self, net: ExcitationNet, batch: int):
        from ...generate.incremental import TorchStack
        from ...generate.sampling import mu_law_bins
        self.bins = lambda x: mu_law_bins(x, net.classes)  # float64, as the fast kernel
        self.net, self.stack = net, TorchStack(net.wavenet, batch)
        self.device, self.outputs = self.stack.device, net.classes
        self.L = len(net.wavenet.layers)
        self.G = net.wavenet.layers[0].conv.out_channels
        self.history = torch.zeros(batch, net.order, device=self.device, dtype=torch.float64)
        silence = mu_law_encode(torch.zeros(1), net.classes).item()
        self.s_prev = torch.full((batch,), silence, dtype=torch.int64, device=self.device)
        self.p = torch.zeros(batch, device=self.device, dtype=torch.float64)

    def step(self, t: int, inputs: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        LG, M = self.L * self.G, self.net.order
        gates = cond[:, :LG].float().view(-1, self.L, self.G)
        j = (t % self.net.hop) / self.net.hop
        a0, a1 = cond[:, LG:LG + M], cond[:, LG + M:LG + 2 * M]
        a = a0 + j * (a1 - a0) if j < 0.5 else a1 - (a1 - a0) * (1.0 - j)  # torch.lerp's rule, unfused
        self.p = predict_next(self.history, a).clamp(-1.0, 1.0)
        x = self.net.embedded(inputs, self.bins(self.p), self.s_prev)
        logits = self.stack.step_embedded(self.stack.slots[t % self.stack.period], x, gates)
        return logits * cond[:, LG + 2 * M, None].float()  # pitch-dependent sharpening

    def observe(self, classes: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """The sampled excitation classes (B,) → the signal s = p + e (B,) (what is output)."""
        s = (self.p + mu_law_decode(classes, self.net.classes).double()).clamp(-1.0, 1.0)
        self.history = torch.cat([self.history[:, 1:], s[:, None]], 1)
        self.s_prev = self.bins(s)
        return s.float()

    def state(self):
        return self.stack.state()


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
        self.frame_net = _convs(code_dim + cfg.speaker_dim + 2 * self.needs_pitch, C, cfg.cond_layers)
        self.envelope = nn.Conv1d(C, M + 1, 1) if self.use_lpc else None
        self.f0_net = (nn.Sequential(_convs(code_dim + cfg.speaker_dim, C // 2, 2), nn.Conv1d(C // 2, 2, 1))
                       if self.needs_pitch else None)
        self.network = ExcitationNet(cfg, C, M, hop)
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

    def predicted_f0(self, codewords: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """The F0 head's F0 (B, F) Hz of codewords (B, D, F) for speakers (B,)."""
        return self.predicted_pitch(codewords, speaker)[0]

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
            lpc = lpc.detach()  # the excitation is taken with the predicted envelope, as generated
            p = prediction(signal.double(), lpc, self.hop).float().clamp(-1, 1)
        else:
            envelope, p = signal.new_zeros(()), torch.zeros_like(signal)
        e = (signal - p).clamp(-1, 1)
        e_cls, p_cls, s_cls = (mu_law_encode(x, self.classes) for x in (e, p, signal))
        e_prev, s_prev = self.noisy(e_cls, noise), self.noisy(s_cls, noise)
        silence = self.first_input
        e_prev, s_prev = (F.pad(x[:, :-1], (1, 0), value=silence) for x in (e_prev, s_prev))
        local = h.repeat_interleave(self.hop, -1)[..., :T]
        logits = self.network(e_prev, p_cls, s_prev, local)
        nll = self.output.nll(logits, e_cls)
        f0_loss = nll.new_zeros(())
        if self.needs_pitch:
            z, v = self._f0_head(codewords, speaker)
            feats = self.pitch_features(pitch[:, :codewords.shape[-1]], speaker)
            voiced = feats[:, 1]
            f0_loss = F.binary_cross_entropy_with_logits(v, voiced) + (
                ((z - feats[:, 0]) ** 2 * voiced).sum() / voiced.sum().clamp_min(1))
            scalars["f0_head"] = f0_loss.detach()
        loss = nll + self.envelope_weight * envelope + f0_loss
        return DecoderOutput(loss, nll, logits, scalars)

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
    def step_inputs(self, codebook, indices, speaker, frames, pitch=None) -> StepInputs:
        device = self.speakers.weight.device
        return StepInputs(_Frames(self, codebook, indices.to(device), speaker.to(device), frames, pitch), None)

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
