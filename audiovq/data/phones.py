"""The phone set of audiovq alignments: the 39 CMUdict ARPAbet phones plus ``sil``.

Labels are upper case without stress digits, as in Montreal Forced Aligner output with an
ARPAbet dictionary; ``sil`` marks pauses and leading/trailing silence. The synthetic corpus
(`audiovq.data.synthetic`) labels its phones by mapping espeak-ng's English phoneme mnemonics
onto this set, each mnemonic to the phone CMUdict would write for the words that use it
(BATH words are AE, NURSE and lettER are ER, non-rhotic NEAR is IH), so every accent shares
one set. What an accent actually says is kept: espeak's West Midlands voice drops h, so its
alignments have no HH, and its Caribbean voice says T and D for TH and DH.

=======  ===========================  =======  ===========================
ARPAbet  espeak-ng English phonemes   ARPAbet  espeak-ng English phonemes
=======  ===========================  =======  ===========================
AA       0 A: A@ aa#                  AE       a aa
AH       V @ @2 @5 a# @-              AO       O: O@ o@ O2 O
AW       aU aU@                       AY       aI aI2 aI3 aI@ aI@3
B        b                            CH       tS
D        d d# d[                      DH       D
EH       E e e@ E2 E3                 ER       3: 3 3:r VR
EY       eI                           F        f
G        g                            HH       h
IH       I I2 I# i@ i@3 IR            IY       i i: i#
JH       dZ                           K        k x
L        l @L l/ L                    M        m m-
N        n n-                         NG       N
OW       oU o oU#                     OY       OI
P        p                            R        r r- (linking) r/
S        s                            SH       S
T        t t# t2 t[ ?                 TH       T
UH       U U@                         UW       u: u U:
V        v                            W        w w#
Y        j ; (linking glide) J        Z        z
ZH       Z                            sil      _ _: _! _| (pauses)
=======  ===========================  =======  ===========================

Stress marks (``'`` ``,`` ``%`` ``=``) are stripped first. ``r-`` is espeak's linking r ("jar of")
and ``;`` its linking y-glide ("the edge"), so they map to R and Y.
An unlisted mnemonic never fails: its longest listed prefix decides (``aI@3x`` → ``aI@3``),
then a pause prefix ``_`` gives ``sil``, and anything else becomes AH, the most neutral vowel.
"""
from __future__ import annotations

ARPABET: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G",
    "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T",
    "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
)
SIL = "sil"
PHONES: tuple[str, ...] = ARPABET + (SIL,)  # every label an alignment may carry

STRESS_MARKS = "',%="

ESPEAK_TO_ARPABET: dict[str, str] = {
    # vowels
    "0": "AA", "A:": "AA", "A@": "AA", "aa#": "AA",
    "a": "AE", "aa": "AE",
    "V": "AH", "@": "AH", "@2": "AH", "@5": "AH", "a#": "AH", "@-": "AH",
    "O:": "AO", "O@": "AO", "o@": "AO", "O2": "AO", "O": "AO",
    "aU": "AW", "aU@": "AW",
    "aI": "AY", "aI2": "AY", "aI3": "AY", "aI@": "AY", "aI@3": "AY",
    "E": "EH", "e": "EH", "e@": "EH", "E2": "EH", "E3": "EH",
    "3:": "ER", "3": "ER", "VR": "ER", "3:r": "ER",
    "eI": "EY",
    "I": "IH", "I2": "IH", "I#": "IH", "i@": "IH", "i@3": "IH", "IR": "IH",
    "i": "IY", "i:": "IY", "i#": "IY",
    "oU": "OW", "o": "OW", "oU#": "OW",
    "OI": "OY",
    "U": "UH", "U@": "UH",
    "u:": "UW", "u": "UW", "U:": "UW",
    # consonants
    "b": "B", "tS": "CH", "d": "D", "d#": "D", "d[": "D", "D": "DH",
    "f": "F", "g": "G", "h": "HH", "dZ": "JH", "k": "K", "x": "K",
    "l": "L", "@L": "L", "l/": "L", "L": "L",
    "m": "M", "m-": "M", "n": "N", "n-": "N", "N": "NG",
    "p": "P", "r": "R", "r-": "R", "r/": "R",
    "s": "S", "S": "SH", "t": "T", "t#": "T", "t2": "T", "t[": "T", "?": "T",
    "T": "TH", "v": "V", "w": "W", "w#": "W", "j": "Y", ";": "Y", "J": "Y",
    "z": "Z", "Z": "ZH",
    # pauses
    "_": SIL, "_:": SIL, "_!": SIL, "_|": SIL,
}


def espeak_to_arpabet(name: str) -> str:
    """One espeak-ng phoneme mnemonic (stress marks allowed) → a label in `PHONES`."""
    bare = name.strip().lstrip(STRESS_MARKS)
    for end in range(len(bare), 0, -1):  # longest listed prefix: tolerate new modifiers
        label = ESPEAK_TO_ARPABET.get(bare[:end])
        if label is not None:
            return label
    return SIL if bare.startswith("_") or not bare else "AH"
