"""Shared fixtures: a small embedded corpus, synthesized and prepared once per test session."""
import pytest

from audiovq.data.synthetic import synthesize_corpus
from audiovq.data.vctk import prepare


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """(raw corpus dir, prepared dir): 4 speakers × 8 utterances, one held-out speaker."""
    root = tmp_path_factory.mktemp("embedded")
    synthesize_corpus(root / "corpus", speakers=4, utterances=8, seed=0, progress=False, workers=1)
    prepare(root / "corpus", root / "prepared", sample_rate=16000, workers=1, progress=False)
    return root / "corpus", root / "prepared"
