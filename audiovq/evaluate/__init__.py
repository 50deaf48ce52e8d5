"""`audiovq evaluate`: how good are conversions? For each (source, target speaker, output):

- speaker similarity — cosine between GE2E speaker embeddings (resemblyzer, weights shipped
  in its wheel) of the output and of reference utterances of the target and of the source
  speaker; a conversion "lands" when it is closer to the target (speaker.py), reported as a
  share with a bootstrap interval by kind of pair: sources the model never heard (the
  headline) or heard, same- or cross-gender (closer.py);
- content — the output re-encoded by the same model keeps the source's codes (frame
  agreement), and, where alignments exist, its codes' phone purity against the source phones;
- pitch — median F0 of the output against the target's and the source speaker's reference
  median F0 (pitch is the plainest speaker cue, and needs no neural model to judge);
- signal — log-mel distance to the source after DTW, and the loudness difference (signal.py);
- what a listener hears — word error rate of a recogniser (asr.py) and DNSMOS quality
  (quality.py) of the output, of its source and of the source's representation limit
  (listener.py).

Modules: conversions (the list and the scoring loop), speaker, closer, signal, asr, quality, listener,
report (table and JSON), page (report.html: every conversion to listen to, beside its scores).
"""
from .asr import Recognition, Recognizer, WordErrors, word_errors, words
from .closer import HEADLINE, Share, closer_by_kind, closer_share, pair_kind
from .conversions import Conversion, Score, _pitch_closer, evaluate, read_conversions
from .listener import Heard, Listener, summarize, transcript
from .page import write_page
from .quality import DNSMOS, Quality
from .report import format_report, format_summary, json_safe, listener_table, write_json
from .signal import mel_dtw_distance, median_f0
from .speaker import PITCH_APART, REFERENCES, SpeakerEmbedder, SpeakerProfile, pitch_closer

__all__ = ["Conversion", "DNSMOS", "HEADLINE", "Share", "closer_by_kind", "closer_share", "pair_kind", "Heard",
           "Listener", "PITCH_APART", "Quality", "REFERENCES", "Recognition",
           "Recognizer", "Score", "SpeakerEmbedder", "SpeakerProfile", "WordErrors", "evaluate", "format_report",
           "json_safe", "listener_table", "mel_dtw_distance", "median_f0", "pitch_closer", "read_conversions",
           "summarize", "transcript", "word_errors", "words", "write_json", "write_page", "format_summary"]
