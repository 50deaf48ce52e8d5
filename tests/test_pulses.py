"""Rendering with pulses instead of the excitation network (generate/renderers/pulses.py): against a
brute-force vocoder of the decoder's own frame outputs, block by block = whole, its F0, and
one-line errors for a decoder without an envelope."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from audiovq.errors import AudioVQError
from audiovq.evaluate.envelope_vocoder import excitation_signal
from audiovq.generate import generate
from audiovq.generate.engine import stream
from audiovq.generate.renderers.pulses import PulseTrain
from audiovq.nn.emphasis import deemphasis
from audiovq.nn.lpc import coefficients_at, synthesis

from test_source_filter import HOP, SR, model, voiced


def _codes(m, frames=40):
    wavs = torch.cat([voiced(T=frames * HOP, f0=120.0, seed=1), voiced(T=frames * HOP, f0=220.0, seed=2)])
    return m.encode(wavs), [frames * HOP, frames * HOP - 45]


def test_pulses_equal_a_brute_force_vocoder_of_the_decoders_frames():
    """The decoder's predicted envelope (LPC, gain) for given F0, under envelope_vocoder's
    excitation, through an all-pole filter written out sample by sample with `coefficients_at`
    (which diffsptk's filter matches), then de-emphasised: the same waveform."""
    m = model().eval()
    d = m.decoder
    codes, lengths = _codes(m)
    f0 = [np.r_[np.zeros(8), np.full(32, 150.0)].astype(np.float32), np.full(40, 210.0, np.float32)]
    got = generate(m, codes, torch.tensor([0, 2]), lengths, seed=[4, 9], pitch=f0, renderer="pulses").audio
    for b, (n, seed) in enumerate(zip(lengths, (4, 9))):
        fb = -(-n // HOP)  # an item's frames are its own (as if generated alone)
        with torch.no_grad():
            _, lar, log_gain = d.frames(m.quantizer.lookup(codes[b:b + 1, :fb]), torch.tensor([[0, 2][b]]),
                                        torch.from_numpy(f0[b][:fb])[None])
            lpc = d.lpc_of(lar)
        e = excitation_signal("pulses", f0[b][:fb], torch.exp(log_gain[0].double()).numpy(), HOP, SR, n, seed)
        s, hist = np.zeros(n), np.zeros(d.order)
        for t in range(n):
            a = coefficients_at(lpc, t, HOP)[0].numpy()
            s[t] = e[t] - sum(a[k] * hist[-1 - k] for k in range(d.order))
            hist = np.r_[hist[1:], s[t]]
        # diffsptk's time-varying all-pole filter (nn/lpc.synthesis) on the whole signal agrees
        np.testing.assert_allclose(synthesis(torch.from_numpy(e)[None], lpc, HOP)[0].numpy(), s,
                                   rtol=1e-6, atol=1e-9 * np.abs(s).max())
        want = deemphasis(s, d.preemphasis)
        assert got[b].shape == (n,)
        np.testing.assert_allclose(got[b], want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_blocks_concatenate_to_the_whole_and_voiced_output_is_at_its_f0():
    m = model().eval()
    codes, lengths = _codes(m)
    f0 = [np.full(40, 160.0, np.float32), np.full(40, 100.0, np.float32)]
    whole = generate(m, codes, torch.tensor([1, 1]), lengths, seed=3, pitch=f0, renderer="pulses").audio
    parts = [[], []]
    for blk in stream(m, codes, torch.tensor([1, 1]), lengths, seed=3, pitch=f0, renderer="pulses", block=HOP * 3):
        for p, a in zip(parts, blk.audio):
            p.append(a)
    for w, p, hz in zip(whole, parts, (160.0, 100.0)):
        np.testing.assert_array_equal(np.concatenate(p), w)
        x = w[200:] - w[200:].mean()
        r = np.correlate(x, x, "full")[x.size - 1:]
        lag = 20 + int(np.argmax(r[20:120]))
        assert SR / lag == pytest.approx(hz, rel=0.03)


def test_the_pulse_train_is_the_same_handed_out_in_blocks():
    f0 = np.r_[np.full(500, 130.0), np.zeros(300), np.full(700, 95.5)]
    whole = PulseTrain(SR, seed=2)(f0)
    train = PulseTrain(SR, seed=2)
    np.testing.assert_array_equal(np.concatenate([train(f0[i:i + 77]) for i in range(0, f0.size, 77)]), whole)
    voiced = whole[:500]
    assert np.count_nonzero(voiced) == 500 * 130 // SR  # one pulse per whole period
    assert np.mean(voiced ** 2) == pytest.approx(1.0, rel=0.1)  # unit power


@pytest.mark.parametrize("extra", [["model.decoder.kind=wavenet"], ["model.decoder.lpc=false"]])
def test_a_decoder_without_an_envelope_gets_one_line(extra):
    m = model(*extra).eval()
    codes, lengths = _codes(m, frames=4)
    for name in ("pulses", "world"):
        with pytest.raises(AudioVQError, match="needs a decoder with linear prediction"):
            stream(m, codes, torch.tensor([0, 1]), lengths, renderer=name)
    with pytest.raises(AudioVQError, match=r"renderer must be one of network, pulses, (test_sines, )?world, not .sines."):
        stream(m, codes, torch.tensor([0, 1]), lengths, renderer="sines")


def test_convert_with_pulses_records_the_setting_and_refuses_a_wavenet(tmp_path, capsys):
    from audiovq import checkpoint as ckpt_io
    from audiovq.config import load_config, to_dict
    from audiovq.nn.vqvae import AudioVQVAE
    from test_cli import run_cli, untrained_checkpoint
    from test_source_filter import SMALL

    cfg = load_config("vqvae", SMALL + [f"data.sample_rate={SR}"])
    torch.manual_seed(0)
    net = AudioVQVAE(cfg.model, 2, SR)
    speakers = [{"id": s, "gender": "", "age": None, "accent": "", "region": ""} for s in ("p225", "p226")]
    ckpt = ckpt_io.save(tmp_path / "sf.pt", ckpt_io.Checkpoint("vqvae", to_dict(cfg), net.state_dict(), 1,
                                                               extra={"speakers": speakers}))
    src = tmp_path / "a.wav"
    sf.write(src, voiced(T=SR, f0=140.0)[0].numpy(), SR)
    code, out, err = run_cli(capsys, "convert", "--src", src, "--speaker", "p226", "--checkpoint", ckpt,
                             "--renderer", "pulses", "--out", tmp_path / "out", "-q")
    assert code == 0, err
    y, sr = sf.read(tmp_path / "out" / "a_to_p226.wav")
    assert sr == SR and y.size == SR and np.isfinite(y).all() and np.abs(y).max() > 0
    assert json.loads((tmp_path / "out" / "conversions.json").read_text())["renderer"] == "pulses"
    # the old spelling still works, with a one-line note
    code, out, err = run_cli(capsys, "convert", "--src", src, "--speaker", "p226", "--checkpoint", ckpt,
                             "--excitation", "pulses", "--out", tmp_path / "old", "-q")
    assert code == 0 and err.strip() == "audiovq: note: --excitation is now --renderer (the old spelling will go)"
    assert json.loads((tmp_path / "old" / "conversions.json").read_text())["renderer"] == "pulses"
    # recorded at export, it is the model's default
    code, out, err = run_cli(capsys, "export", ckpt, tmp_path / "slim.pt", "--renderer", "pulses")
    assert code == 0, err
    code, out, err = run_cli(capsys, "convert", "--src", src, "--speaker", "p225", "--checkpoint",
                             tmp_path / "slim.pt", "--out", tmp_path / "out3", "-q")
    assert code == 0, err
    assert json.loads((tmp_path / "out3" / "conversions.json").read_text())["renderer"] == "pulses"
    wavenet = untrained_checkpoint(tmp_path / "wn.pt", ["p225", "p226"], SR)
    code, out, err = run_cli(capsys, "export", wavenet, tmp_path / "wn-slim.pt", "--renderer", "pulses")
    assert code != 0 and "linear prediction" in err and not (tmp_path / "wn-slim.pt").exists()
    code, out, err = run_cli(capsys, "convert", "--src", src, "--speaker", "p226", "--checkpoint", wavenet,
                             "--renderer", "pulses", "--out", tmp_path / "out2", "-q")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "linear prediction" in err
    assert not (tmp_path / "out2").exists()
