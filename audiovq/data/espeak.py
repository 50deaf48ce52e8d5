"""espeak-ng, the embedded corpus's formant synthesizer, driven through ctypes.

espeak-ng (the shared library shipped in the ``espeakng-loader`` wheel) runs in synchronous
mode with word and phoneme events. It keeps synthesis state in static variables that survive
``espeak_Terminate`` (the next utterance would depend on the previous one), so every call
loads a fresh instance of the library, seeds its random generator and unloads it again:
output depends only on the arguments, never on order or on worker processes. The corpus
builder (`synthetic.py`) turns the events into alignment tiers.
"""
from __future__ import annotations

import _ctypes
import ctypes
import threading
from typing import NamedTuple

import numpy as np

from ..errors import AudioVQError
from .alignments import text_words

ESPEAK_RATE = 22050        # espeak-ng's native output rate

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_PHONEME = 0, 1, 7
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _EspeakEvent(ctypes.Structure):
    """espeak_EVENT of speak_lib.h (40 bytes on LP64: the pointer fields align to 8)."""
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_EspeakEvent))


class Event(NamedTuple):
    kind: str           # "word" or "phoneme"
    sample: int         # position in the 22050 Hz output
    text_position: int  # 1-based character index of the word in the text (words)
    length: int         # characters in the word (words)
    phoneme: str        # espeak mnemonic with stress marks (phonemes)


class Synthesis(NamedTuple):
    audio: np.ndarray         # (T,) int16 at ESPEAK_RATE
    events: list[Event]
    word_phonemes: list[int]  # phonemes of each of `text_words(text)` said on its own


def _count_phonemes(lib, word: str) -> int:
    """Phonemes espeak says for `word` alone (pauses excluded), from espeak_TextToPhonemes."""
    ptr = ctypes.c_char_p(word.encode("utf-8"))
    out = lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, ord(" ") << 8) or b""
    return sum(1 for name in out.decode("ascii", "replace").split() if not name.startswith("_"))


_espeak_lock = threading.Lock()  # espeak-ng is one global state per loaded instance


def _espeak_paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError:
        raise AudioVQError("the synthetic corpus needs the espeakng-loader package "
                           "(pip install espeakng-loader)") from None
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


def espeak_synthesize(text: str, voice: str, *, rate: int = 175, pitch: int = 50, pitch_range: int = 50,
                      rand_seed: int = 0) -> Synthesis:
    """Speak `text` with espeak-ng voice `voice` ("en-us+f3"); samples and word/phoneme events.

    A fresh library instance per call makes the result a function of the arguments alone.
    espeak gives some word pairs ("of the") one WORD event; `word_phonemes` lets `align`
    split those.
    """
    lib_path, data_path = _espeak_paths()
    samples: list[np.ndarray] = []
    events: list[Event] = []

    def collect(wav, n, ev) -> int:
        if n > 0:
            samples.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while ev[i].type != _EVENT_LIST_TERMINATED:
            e = ev[i]
            if e.type == _EVENT_WORD:
                events.append(Event("word", e.sample, e.text_position, e.length, ""))
            elif e.type == _EVENT_PHONEME:
                events.append(Event("phoneme", e.sample, 0, 0, e.id.string.decode("ascii", "replace")))
            i += 1
        return 0

    callback = _SynthCallback(collect)
    encoded = text.encode("utf-8")
    with _espeak_lock:
        lib = ctypes.CDLL(lib_path)
        try:
            lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                         ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
            sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(),
                                       _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
            if sr != ESPEAK_RATE:
                raise AudioVQError(f"espeak-ng failed to initialise from {data_path} (returned {sr})")
            lib.espeak_ng_SetRandSeed(rand_seed)
            lib.espeak_SetSynthCallback(callback)
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise AudioVQError(f"espeak-ng has no voice {voice!r}")
            # Setting a voice keeps the previous rate/pitch/range, so always set all of them.
            for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range),
                                 (_PARAM_VOLUME, 100)):
                lib.espeak_SetParameter(param, int(value), 0)
            err = lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0,
                                   _CHARS_UTF8 | _ENDPAUSE, None, None)
            if err != 0:
                raise AudioVQError(f"espeak-ng could not speak {text[:40]!r} (error {err})")
            lib.espeak_Synchronize()
            lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
            lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
            counts = [_count_phonemes(lib, text[w.start:].split(maxsplit=1)[0]) for w in text_words(text)]
        finally:
            lib.espeak_Terminate()
            _ctypes.dlclose(lib._handle)  # drop the static state: the next call starts afresh
    wav = np.concatenate(samples) if samples else np.zeros(0, np.int16)
    return Synthesis(wav, events, counts)
