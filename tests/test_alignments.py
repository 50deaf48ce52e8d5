"""TextGrid reading (long/short format, UTF-8/UTF-16, errors) and atomic writing."""
import pathlib

import pytest

from audiovq.data.alignments import Interval, read_textgrid, write_textgrid
from audiovq.errors import AudioVQError

# Written the way Praat saves a TextGrid "as text file", including its trailing spaces,
# a point tier (ignored by the reader) and a doubled quote inside a label.
LONG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0 
xmax = 1.5 
tiers? <exists> 
size = 3 
item []: 
    item [1]:
        class = "IntervalTier" 
        name = "words" 
        xmin = 0 
        xmax = 1.5 
        intervals: size = 3 
        intervals [1]:
            xmin = 0 
            xmax = 0.25 
            text = "" 
        intervals [2]:
            xmin = 0.25 
            xmax = 1.2 
            text = "say ""hi"" [2]" 
        intervals [3]:
            xmin = 1.2 
            xmax = 1.5 
            text = "" 
    item [2]:
        class = "TextTier" 
        name = "events" 
        xmin = 0 
        xmax = 1.5 
        points: size = 2 
        points [1]:
            number = 0.5 
            mark = "click" 
        points [2]:
            number = 1 
            mark = "7" 
    item [3]:
        class = "IntervalTier" 
        name = "phones" 
        xmin = 0 
        xmax = 1.5 
        intervals: size = 2 
        intervals [1]:
            xmin = 0 
            xmax = 6.25e-1 
            text = "sil" 
        intervals [2]:
            xmin = 0.625 
            xmax = 1.5 
            text = "AY" 
'''

# The same grid in Praat's short text format.
SHORT = '''File type = "ooTextFile"
Object class = "TextGrid"

0
1.5
<exists>
3
"IntervalTier"
"words"
0
1.5
3
0
0.25
""
0.25
1.2
"say ""hi"" [2]"
1.2
1.5
""
"TextTier"
"events"
0
1.5
2
0.5
"click"
1
"7"
"IntervalTier"
"phones"
0
1.5
2
0
0.625
"sil"
0.625
1.5
"AY"
'''

EXPECTED = {
    "words": [Interval(0.0, 0.25, ""), Interval(0.25, 1.2, 'say "hi" [2]'), Interval(1.2, 1.5, "")],
    "phones": [Interval(0.0, 0.625, "sil"), Interval(0.625, 1.5, "AY")],
}


def test_reads_praat_long_format(tmp_path):
    p = tmp_path / "a.TextGrid"
    p.write_text(LONG)
    assert read_textgrid(p) == EXPECTED


def test_reads_praat_short_format(tmp_path):
    p = tmp_path / "a.TextGrid"
    p.write_text(SHORT)
    assert read_textgrid(p) == EXPECTED


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig"])
def test_reads_utf16_and_bom(tmp_path, encoding):
    p = tmp_path / "u.TextGrid"
    p.write_bytes(LONG.replace("AY", "ʃœ").encode(encoding))  # utf-16 writes a BOM, utf-16-le does not
    tiers = read_textgrid(p)
    assert tiers["phones"][1] == Interval(0.625, 1.5, "ʃœ")
    assert tiers["words"] == EXPECTED["words"]


def test_empty_grid(tmp_path):
    p = tmp_path / "e.TextGrid"
    p.write_text('File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n2\n<absent>\n')
    assert read_textgrid(p) == {}


def test_round_trip_fills_gaps_and_keeps_exact_times(tmp_path):
    third = 1 / 3  # not exactly representable in decimal: must survive the text round trip
    tiers = {
        "words": [Interval(0.1, third, 'quote " and ünïcode'), Interval(0.5, 0.75, "b")],
        "phones": [Interval(0.0, third, "sil"), Interval(third, 0.75, "B")],
    }
    p = tmp_path / "sub" / "r.TextGrid"
    write_textgrid(p, tiers, xmax=1.0)
    back = read_textgrid(p)
    assert back["words"] == [Interval(0.0, 0.1, ""), Interval(0.1, third, 'quote " and ünïcode'),
                             Interval(third, 0.5, ""), Interval(0.5, 0.75, "b"), Interval(0.75, 1.0, "")]
    assert back["phones"] == [Interval(0.0, third, "sil"), Interval(third, 0.75, "B"), Interval(0.75, 1.0, "")]
    assert list(back) == ["words", "phones"]
    assert sorted(x.name for x in p.parent.iterdir()) == ["r.TextGrid"]  # no temp file left
    text = p.read_text()
    assert text.startswith('File type = "ooTextFile"\nObject class = "TextGrid"\n')
    assert "intervals: size = 5" in text and "xmax = 1 " in text


def test_xmax_defaults_to_last_end(tmp_path):
    p = tmp_path / "d.TextGrid"
    write_textgrid(p, {"phones": [Interval(0.0, 0.5, "AA"), Interval(0.5, 0.8, "sil")]})
    assert read_textgrid(p)["phones"][-1] == Interval(0.5, 0.8, "sil")
    assert "\nxmax = 0.8 \n" in p.read_text()


@pytest.mark.parametrize("bad", [
    [Interval(0.0, 0.5, "a"), Interval(0.4, 0.8, "b")],  # overlap
    [Interval(0.2, 0.2, "a")],                            # empty
    [Interval(0.0, 1.5, "a")],                            # past xmax
    [Interval(-0.1, 0.5, "a")],                           # before 0
])
def test_write_rejects_bad_intervals_and_leaves_nothing(tmp_path, bad):
    p = tmp_path / "w.TextGrid"
    with pytest.raises(AudioVQError, match="w.TextGrid"):
        write_textgrid(p, {"phones": bad}, xmax=1.0)
    assert list(tmp_path.iterdir()) == []


def test_missing_file(tmp_path):
    p = tmp_path / "nope.TextGrid"
    with pytest.raises(AudioVQError) as e:
        read_textgrid(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(AudioVQError, match="directory"):
        read_textgrid(tmp_path)


@pytest.mark.parametrize("text, why", [
    ("", "ends where"),
    ("hello world\n", "ends where"),
    ('File type = "ooTextFile"\nObject class = "Pitch 1"\n', "not a TextGrid"),
    ('File type = "ooBinaryFile"\n', "not a Praat text file"),
    (LONG[: LONG.index("intervals [2]")], "ends where"),                        # truncated
    (LONG.replace("xmax = 0.25 ", 'xmax = "x" ', 1), "expected xmax of interval 1"),
    (LONG.replace("intervals: size = 3", "intervals: size = -3", 1), "not a count"),
    (LONG.replace("xmax = 1.2 ", "xmax = 0.1 ", 1), "ends before it starts"),
    (LONG.replace('"TextTier"', '"PitchTier"'), "unknown tier class"),
    (SHORT.replace("<exists>", "3"), "expected <exists> or <absent>"),
])
def test_malformed_files_raise_one_line(tmp_path, text, why):
    p = tmp_path / "m.TextGrid"
    p.write_text(text)
    with pytest.raises(AudioVQError, match=why) as e:
        read_textgrid(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and "\n" not in msg


def test_undecodable_utf16(tmp_path):
    p = tmp_path / "bad16.TextGrid"
    p.write_bytes(b"\xff\xfe" + b"F\x00\x00\xd8")  # BOM then a lone high surrogate
    with pytest.raises(AudioVQError, match="bad16.TextGrid"):
        read_textgrid(pathlib.Path(p))
