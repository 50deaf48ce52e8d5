"""The report pages (report.html of `audiovq evaluate` and `audiovq analyze`): made from the
same results as the JSON beside them (every number cell compared with the JSON), bad audio
marked in its row instead of a traceback, 500 conversions in well under 5 MB, and — in
headless Chromium, opened from disk — every player loads its file, every image decodes,
clicking a header reorders the rows and nothing is logged as an error. Without chromium,
chromedriver or selenium the browser tests are skipped, saying which is missing."""
from __future__ import annotations

import html
import html.parser
import json
import pathlib
import shutil
import time
from dataclasses import asdict

import numpy as np
import pytest
import torch

from audiovq import audio, checkpoint as ckpt_io
from audiovq.config import load_config, to_dict
from audiovq.evaluate import Heard, Listener, Score, format_summary, summarize, write_json, write_page
from audiovq.evaluate.page import COLUMNS, DERIVED, lookup
from audiovq.nn.vqvae import AudioVQVAE
from test_cli import run_cli  # (tests/ is on the path)

SR = 16000
SMALL = ["model.encoder.layers=6", "data.sample_rate=16000", "model.encoder.channels=16",
         "model.quantizer.codebook_size=16", "model.quantizer.dim=8", "model.decoder.residual_channels=8",
         "model.decoder.gate_channels=16", "model.decoder.skip_channels=16", "model.decoder.layers_per_cycle=3",
         "model.decoder.cond_channels=8", "model.decoder.speaker_dim=4", "model.quantizer.kmeans_iters=0"]


def tiny_model(speakers: int = 3) -> AudioVQVAE:
    torch.manual_seed(0)
    return AudioVQVAE(load_config("vqvae", SMALL + ["model.decoder.preemphasis=0.85"]).model, speakers, SR).eval()


def tone(f0: float, seconds: float = 0.4, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5))).astype(np.float32)


class Cells(html.parser.HTMLParser):
    """The rows of one table (by id): per row its attributes and {data-key: data-value}; and
    every <audio> and <img> source of the page."""

    def __init__(self, table: str):
        super().__init__()
        self.table, self.inside, self.in_body = table, False, False
        self.rows: list[dict] = []
        self.audio: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.inside = a.get("id") == self.table
        elif tag == "tbody" and self.inside:
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows.append({"attrs": a, "values": {}})
        elif tag == "td" and self.in_body and "data-key" in a:
            self.rows[-1]["values"][a["data-key"]] = a.get("data-value", "")
        elif tag == "audio":
            self.audio.append(a["src"])
        elif tag == "img":
            self.images.append(a["src"])

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_body = False
        elif tag == "table":
            self.inside = False


def parse(page: pathlib.Path, table: str) -> Cells:
    p = Cells(table)
    p.feed(page.read_text())
    return p


def same(cell: str, value) -> bool:
    """A cell's data-value against the JSON's value: '' for null, else the same number."""
    if value is None:
        return cell == ""
    return cell != "" and float(cell) == float(value)


# ---------------------------------------------------------------------------- evaluation page

def synthetic_report(folder: pathlib.Path, n: int, files: int = 4, missing: int = 0) -> dict:
    """A report shaped as `evaluate` returns it (its Score and Heard dataclasses) for n
    conversions among `files` source and output files written here, the sources'
    representation limits from a tiny model, and `missing` conversions whose output is gone."""
    rng = np.random.default_rng(n)
    model = tiny_model()
    folder.mkdir(parents=True, exist_ok=True)
    limits = folder / "report_files" / "limits"
    refs = {}
    for k, spk in enumerate(("p225", "p226")):
        refs[spk] = [str(folder / f"ref_{spk}.wav")]
        audio.save(refs[spk][0], tone(180 + 60 * k, 0.5), SR)
    sources, outputs, limit_files = [], [], []
    for i in range(files):
        src, out, lim = folder / f"src{i}.wav", folder / f"src{i}_to_x.wav", limits / f"{i:04d}_src{i}.wav"
        x = tone(100 + 30 * i)
        audio.save(src, x, SR)
        audio.save(out, tone(200 + 20 * i) + 0.01 * rng.standard_normal(x.size).astype(np.float32), SR)
        audio.save(lim, model.representation_limit(x), SR)
        sources.append(str(src)), outputs.append(str(out)), limit_files.append(str(lim))
    items = []
    for i in range(n):
        f = i % files
        heard = {"output": Heard(wer=float(rng.uniform(0, 2)), words=5, errors=int(rng.integers(0, 10)),
                                 hypothesis="a b c" if i % 3 else "", ovrl=float(rng.uniform(1, 3)), sig=2.0,
                                 bak=3.0, p808=2.5),
                 "source": Heard(wer=0.2, words=5, errors=1, hypothesis="the words", ovrl=3.1, sig=3.3, bak=4.0),
                 "limit": Heard(ovrl=3.0, sig=3.2, bak=4.1)}
        s = Score(outputs[f], ("p225", "p226")[i % 2], "p999", float(rng.uniform(0.5, 0.9)),
                  float(rng.uniform(0.4, 0.8)), bool(i % 4), float(rng.uniform(0, 0.4)), float(rng.uniform(100, 200)),
                  float(rng.normal()), float(rng.uniform(90, 260)), 200.0 if i % 2 else 140.0,
                  float("nan") if i == 1 else 120.0, sources[f], heard, limit_files[f],
                  "the words said" if i % 5 else None)
        items.append(asdict(s))
    failed = [{"output": str(folder / f"gone{j}.wav"), "target": "p225", "source": sources[0],
               "source_speaker": "p999", "error": f"{folder / f'gone{j}.wav'}: no such file"} for j in range(missing)]
    summary = {"conversions": n, "closer_to_target": float(np.mean([i["closer_to_target"] for i in items])),
               "sim_target": 0.7, "sim_source": 0.6, "code_agreement": 0.2, "mel_distance": 150.0,
               "loudness_diff_db": 0.0, "pitch_pairs": 0, "pitch_closer_to_target": float("nan"), **summarize(items)}
    if missing:
        summary["failed"] = missing
    return {"items": items, "summary": summary, "references": refs, "failed": failed}


def test_evaluation_page_numbers_are_the_json_numbers(tmp_path):
    report = synthetic_report(tmp_path, 6, missing=1)
    write_json(tmp_path / "evaluation.json", report)
    page = write_page(tmp_path / "report.html", report)
    saved = json.loads((tmp_path / "evaluation.json").read_text())
    cells = parse(page, "conversions")
    assert len(cells.rows) == 7
    keys = {c.key for c in COLUMNS} - DERIVED
    for row, item in zip(cells.rows, saved["items"]):
        assert set(row["values"]) == keys and row["attrs"]["data-target"] == item["target"]
        for key, cell in row["values"].items():
            assert same(cell, lookup(item, key)), (key, cell, lookup(item, key))
    assert cells.rows[-1]["attrs"]["class"] == "failed" and not cells.rows[-1]["values"]
    text = html.unescape(page.read_text())
    for line in format_summary(saved):  # the summary `evaluate` prints, at the top
        assert line in text
    assert "gone0.wav: no such file" in text
    # players: every file once per row that shows it, none for the missing output; links relative
    assert not any("gone0" in a for a in cells.audio)
    assert sum(a.endswith("src0_to_x.wav") for a in cells.audio) == 2
    assert not any(a.startswith("/") for a in cells.audio)
    assert {pathlib.Path(a).parts[0] for a in cells.images} == {"report_files"}
    for src in cells.images + cells.audio:
        assert (tmp_path / src).is_file(), src


def test_a_page_of_500_conversions_stays_small(tmp_path):
    report = synthetic_report(tmp_path, 500, files=5)
    page = write_page(tmp_path / "report.html", report)
    size = page.stat().st_size
    assert size < 5e6, f"{size / 1e6:.1f} MB"
    cells = parse(page, "conversions")
    assert len(cells.rows) == 500 and len(cells.audio) == 2000
    assert 'preload="none"' in page.read_text() and 'preload="metadata"' not in page.read_text()


def untrained_checkpoint(path: pathlib.Path, speaker_ids: list[str], corpus: pathlib.Path) -> pathlib.Path:
    cfg = load_config("vqvae", SMALL)
    torch.manual_seed(0)
    model = AudioVQVAE(cfg.model, len(speaker_ids), SR)
    speakers = [{"id": s, "gender": "", "age": None, "accent": "", "region": ""} for s in speaker_ids]
    return ckpt_io.save(path, ckpt_io.Checkpoint("vqvae", to_dict(cfg), model.state_dict(), 1,
                                                 extra={"speakers": speakers, "corpus": str(corpus)}))


class SpectrumEmbedder:
    """A stand-in for GE2E embeddings (test_listener.py runs the real one): the unit-norm
    magnitude spectrum in 32 bands."""

    def __call__(self, wav, sample_rate):
        bands = np.array_split(np.abs(np.fft.rfft(wav)), 32)
        e = np.array([b.mean() for b in bands])
        return e / (np.linalg.norm(e) or 1.0)

    def mean(self, wavs, sample_rate):
        e = np.mean([self(w, sample_rate) for w in wavs], axis=0)
        return e / np.linalg.norm(e)


def test_evaluate_writes_the_page_and_marks_bad_audio(small_corpus, tmp_path, capsys, monkeypatch):
    from audiovq.data.manifest import Manifest
    from audiovq.evaluate import conversions
    # the page and bad input are under test here, not the measures (test_listener.py): quick stand-ins
    monkeypatch.setattr(conversions, "Listener", lambda: Listener(False, False))
    monkeypatch.setattr(conversions, "SpeakerEmbedder", SpectrumEmbedder)
    _, prepared = small_corpus
    manifest = Manifest.load(prepared)
    ckpt = untrained_checkpoint(tmp_path / "m.pt", manifest.speaker_ids("train"), prepared)
    utt = manifest.split("test")[0]
    folder = tmp_path / "converted"
    folder.mkdir()
    good = folder / "good_to_p225.wav"
    shutil.copy(manifest.audio_path(utt), good)
    (folder / "corrupt_to_p226.wav").write_bytes(b"RIFF\x00\x00not audio")
    items = [{"source": str(manifest.audio_path(utt)), "target": "p225", "output": str(good),
              "source_speaker": utt.speaker, "source_utterance": utt.id},
             {"source": str(manifest.audio_path(utt)), "target": "p226", "output": str(folder / "gone_to_p226.wav"),
              "source_speaker": utt.speaker, "source_utterance": utt.id},
             {"source": str(manifest.audio_path(utt)), "target": "p226", "output": str(folder / "corrupt_to_p226.wav"),
              "source_speaker": utt.speaker, "source_utterance": utt.id}]
    (folder / "conversions.json").write_text(json.dumps({"items": items}))
    code, out, err = run_cli(capsys, "evaluate", folder, "--checkpoint", ckpt, "--data", prepared)
    assert code == 0, err
    assert "Traceback" not in err and f"page: {folder / 'report.html'}" in out
    assert "not scored: gone_to_p226.wav → p226" in out and "not scored: corrupt_to_p226.wav → p226" in out
    report = json.loads((folder / "evaluation.json").read_text())
    assert len(report["items"]) == 1 and len(report["failed"]) == 2 and report["summary"]["failed"] == 2
    assert report["references"]["p225"] and report["items"][0]["text"] == utt.text
    limit = pathlib.Path(report["items"][0]["limit_audio"])
    assert limit.parent == folder / "report_files" / "limits" and audio.info(limit).sample_rate == SR
    cells = parse(folder / "report.html", "conversions")
    assert [r["attrs"].get("class") for r in cells.rows] == [None, "failed", "failed"]
    assert not any("gone" in a or "corrupt" in a for a in cells.audio)
    page = html.unescape((folder / "report.html").read_text())
    assert "missing" in page and "unreadable" in page

    # nothing scorable: still the page, then one line and exit status 2
    (folder / "conversions.json").write_text(json.dumps({"items": items[1:]}))
    code, out, err = run_cli(capsys, "evaluate", folder, "--checkpoint", ckpt, "--data", prepared)
    assert code == 2 and err.count("\n") == 1 and "none of the 2 conversions could be scored" in err
    assert len(parse(folder / "report.html", "conversions").rows) == 2


# ------------------------------------------------------------------------------ analysis page

@pytest.fixture(scope="module")
def analysis(small_corpus, tmp_path_factory):
    """`analyze` of the small corpus by a tiny (untrained) model into a folder, code 5 asked."""
    from audiovq.analysis.pipeline import analyze
    from audiovq.data.manifest import Manifest
    raw, prepared = small_corpus
    out = tmp_path_factory.mktemp("analysis")
    result = analyze(tiny_model(), Manifest.load(prepared), raw / "alignments", out_dir=out, progress=False,
                     hear_codes=[5])
    return out, result


def test_analysis_page_numbers_are_the_json_numbers(analysis):
    out, result = analysis
    doc = json.loads((out / "report.json").read_text())
    page = out / "report.html"
    assert result.files[-1] == page and result.files[0] == out / "report.json"
    methods = parse(page, "methods")
    assert len(methods.rows) == len(doc["methods"])
    for row, (name, m) in zip(methods.rows, doc["methods"].items()):
        assert row["values"], name
        for key, cell in row["values"].items():
            assert same(cell, m.get(key)), (name, key, cell, m.get(key))
    abx_rows = parse(page, "abx").rows
    with_abx = [m for m in doc["methods"].values() if "abx_within" in m]
    assert len(abx_rows) == len(with_abx) == 4
    for row, m in zip(abx_rows, with_abx):
        for key, cell in row["values"].items():
            assert same(cell, m[key]), (key, cell, m[key])
    text = html.unescape(page.read_text())
    learned = doc["methods"]["learned codes"]
    assert learned["pnmi_ci"] is not None and learned["phone_purity_ci"] is not None
    if not learned["abx_within_enough"]:  # the small corpus: too few within-speaker triplets, and it says so
        assert (f"{learned['abx_triplets_within']} triplets in {learned['abx_cells_within']} cells: "
                "too few to mean anything") in text
    heard = doc["codes_heard"]
    assert heard and heard[-1]["code"] == 5 and heard[-1]["asked"]
    codes = parse(page, "codes")
    assert len(codes.rows) == len(heard)
    for h in heard:
        if h["audio"]:
            assert (out / h["audio"]).is_file() and h["audio"] in codes.audio
            assert audio.info(out / h["audio"]).frames > 0


def test_a_code_the_model_does_not_have_is_one_line(small_corpus, tmp_path):
    from audiovq.analysis.pipeline import analyze
    from audiovq.data.manifest import Manifest
    from audiovq.errors import AudioVQError
    raw, prepared = small_corpus
    with pytest.raises(AudioVQError, match="code 16 is out of range: the model's codes are 0–15"):
        analyze(tiny_model(), Manifest.load(prepared), raw / "alignments", out_dir=tmp_path, hear_codes=[16])


# ------------------------------------------------------------------------------------ browser

def _chromium():
    """A headless Chromium driven by its Debian driver (nothing is downloaded), or skip."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    if missing:
        pytest.skip(f"browser test needs {' and '.join(missing)} "
                    "(make chromium; apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = _chromium()
    yield driver
    driver.quit()


MEDIA_STATE = """
const audio = [...document.querySelectorAll('audio')];
return {pending: audio.filter(a => a.preload !== 'none' && a.readyState < 1 && !a.error).length,
        audio: audio.map(a => [a.getAttribute('src'), a.duration, a.error ? a.error.code : null]),
        images: [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])};
"""


def open_page(driver, page: pathlib.Path, seconds: float = 10.0) -> dict:
    """Load the page from disk and wait (up to `seconds`) for the metadata of every player that
    preloads it."""
    driver.get_log("browser")  # drop what an earlier page logged
    driver.get(page.resolve().as_uri())
    deadline = time.monotonic() + seconds
    state = driver.execute_script(MEDIA_STATE)
    while state["pending"] and time.monotonic() < deadline:
        time.sleep(0.1)
        state = driver.execute_script(MEDIA_STATE)
    return state


def row_order(driver, table: str) -> list[str]:
    return driver.execute_script(
        f"return [...document.getElementById('{table}').tBodies[0].rows].map(r => r.cells[0].textContent.trim())")


def sorting_reorders(driver, table: str, header: str) -> bool:
    """Click the header twice (ascending, descending): does either order differ from the first?"""
    before = row_order(driver, table)
    th = next(t for t in driver.find_elements("css selector", f"#{table} th") if t.text.startswith(header))
    orders = []
    for _ in range(2):
        th.click()
        orders.append(row_order(driver, table))
    assert sorted(orders[0]) == sorted(before)  # the same rows, reordered
    return any(o != before for o in orders)


def errors_logged(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def check_media(state: dict) -> None:
    assert state["audio"] and state["images"]
    for src, duration, error in state["audio"]:
        assert error is None and duration and duration > 0, (src, duration, error)
    for src, complete, width in state["images"]:
        assert complete and width > 0, src


def test_both_pages_work_in_chromium_from_disk(browser, analysis, tmp_path):
    report = synthetic_report(tmp_path / "eval", 6, missing=1)
    page = write_page(tmp_path / "eval" / "report.html", report)
    state = open_page(browser, page)
    check_media(state)
    assert len(state["audio"]) == 6 * 4 + 2 and not errors_logged(browser)  # the failed row: source, reference
    assert sorting_reorders(browser, "conversions", "sim→tgt")
    # the target filter hides the other speaker's rows
    browser.execute_script("const s = document.querySelector('select[data-filter]'); s.value = 'p226';"
                           "s.dispatchEvent(new Event('change'));")
    shown = browser.execute_script("return [...document.querySelectorAll('#conversions tbody tr')]"
                                   ".filter(r => !r.hidden).map(r => r.dataset.target)")
    assert shown == ["p226"] * 3
    assert not errors_logged(browser)

    out, _ = analysis
    state = open_page(browser, out / "report.html")
    check_media(state)
    assert sorting_reorders(browser, "methods", "PNMI")
    assert sorting_reorders(browser, "codes", "code")
    assert not errors_logged(browser)


def test_a_page_of_500_conversions_opens_without_loading_its_audio(browser, tmp_path):
    """What keeps a big page quick to open (no timing here: this machine is shared): no player
    loads its audio and no spectrogram is fetched before it is wanted."""
    page = write_page(tmp_path / "report.html", synthetic_report(tmp_path, 500, files=5))
    open_page(browser, page)
    assert browser.execute_script("return document.readyState") == "complete"
    players = browser.execute_script("return Array.from(document.querySelectorAll('audio'), a => a.preload)")
    assert len(players) >= 500 and set(players) == {"none"}
    lazy = browser.execute_script("return Array.from(document.querySelectorAll('img'), i => i.loading)")
    assert lazy and set(lazy) == {"lazy"}
    assert not errors_logged(browser)  # e.g. Chromium's limit on media players
    assert sorting_reorders(browser, "conversions", "WER out")
    # audio loads when played: one player asked to load now reads its file
    duration = browser.execute_async_script(
        "const done = arguments[arguments.length - 1]; const a = document.querySelector('audio');"
        "a.addEventListener('loadedmetadata', () => done(a.duration)); a.preload = 'metadata'; a.load();")
    assert duration > 0
