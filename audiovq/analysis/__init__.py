"""Analysis of learned codes against phone labels (the paper's "codes discover phonemes" claim).

labels    — normalise aligner labels, the phone under each code frame's centre
metrics   — mapping accuracy, purities, PNMI, code usage, run lengths, speaker leakage
baselines — majority, random and MFCC k-means code streams at the codes' frame rate
report    — all metrics for a stream, a table across methods, report.json and plots
confidence — bootstrap intervals, and when an ABX score rests on too few comparisons
speakers  — whether the codes name the speaker, for trained-on and for unseen speakers
hear      — a code's occurrences cut from the audio, to hear what it stands for
page      — report.html: the tables, ABX, plots and the codes to hear, from report.json's document
"""
from .baselines import code_frame_count, mfcc_frames, mfcc_kmeans_codes, random_codes
from .labels import (OUTSIDE, SILENCE, LabelledFrames, encode_phones, frame_labels, load_phone_mapping,
                     normalize_intervals, normalize_phone, phone_tier)
from .metrics import cluster_quality, code_usage, contingency, mapping_accuracy, run_lengths, speaker_leakage
from .report import compare_methods, evaluate_codes, format_intervals, format_table, write_report

__all__ = [
    "OUTSIDE", "SILENCE", "LabelledFrames", "cluster_quality", "code_frame_count",
    "code_usage", "compare_methods", "contingency", "encode_phones", "evaluate_codes", "format_table",
    "frame_labels", "load_phone_mapping", "mapping_accuracy", "mfcc_frames", "mfcc_kmeans_codes",
    "normalize_intervals", "normalize_phone", "phone_tier", "random_codes",
    "run_lengths", "speaker_leakage", "write_report", "format_intervals",
]
