"""The command line with hostile or odd files: bounded memory, and errors that say what the file is."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from chainrule.cli import main

_MEASURE = """
import resource, subprocess, sys
run = subprocess.run([sys.executable, "-m", "chainrule", *sys.argv[1:]], capture_output=True, text=True)
print("RC", run.returncode)
print("ERR", run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "")
print("MAXRSS_MB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""


def _measure(chainrule_process, tmp_path, *args):
    """(exit code, last stderr line, peak resident MB) of ``chainrule *args`` in a fresh process."""
    out = chainrule_process(["-c", _MEASURE, *args], tmp_path).stdout
    values = dict(line.split(" ", 1) for line in out.strip().splitlines())
    return int(values["RC"]), values["ERR"], int(values["MAXRSS_MB"])


def _one_bit_png(path: Path, width: int, height: int) -> None:
    """A black one-bit PNG of width x height, written row by row: ~20 KB for 12000 x 12000."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compress, row = zlib.compressobj(9), bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed bits
    body = b"".join(compress.compress(row) for _ in range(height)) + compress.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("untrusted") / "run"
    assert main(["train", "--data", "digits", "--model", "softmax", "--epochs", "1", "--out", str(run), "-q"]) == 0
    return run


def test_predict_refuses_an_image_over_the_pixel_cap_before_decoding_it(digits_run, tmp_path, chainrule_process):
    big = tmp_path / "big.png"
    _one_bit_png(big, 12000, 12000)  # 144 million pixels; Pillow's default cap is 89 million
    assert big.stat().st_size < 100_000
    small = tmp_path / "small.png"
    _one_bit_png(small, 16, 16)
    rc, err, _ = _measure(chainrule_process, tmp_path, "predict", str(digits_run), str(small), "-q")
    assert rc == 0, err
    rc, err, peak_mb = _measure(chainrule_process, tmp_path, "predict", str(digits_run), str(big), "-q")
    assert rc == 2 and "12000x12000 (height x width) is 144,000,000 pixels, over the limit of 89,478,485" in err, err
    assert peak_mb < 400, f"refusing the image took {peak_mb} MB (decoding it: ~700 MB)"


def test_predict_says_what_a_path_that_is_not_an_image_file_is(digits_run, tmp_path, capsys):
    (tmp_path / "dir.png").mkdir()
    os.mkfifo(tmp_path / "fifo.png")
    for name, what in (("dir.png", "is a directory"), ("fifo.png", "is a FIFO (named pipe)"),
                       ("nope.png", "does not exist")):
        assert main(["predict", str(digits_run), str(tmp_path / name), "-q"]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"image {tmp_path / name} {what}; predict takes image files" in err, err


def _image_folder(root: Path, class_dirs: list[bytes], n: int = 6) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in class_dirs:
        folder = os.path.join(os.fsencode(root), c)
        os.makedirs(folder)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
                os.fsdecode(os.path.join(folder, b"%d.png" % i)))


def test_class_folders_not_valid_utf8_are_shown_with_replacement_characters(tmp_path, capsys):
    import json

    _image_folder(tmp_path / "data", [b"caf\xe9", b"dog"])  # a Latin-1 folder name
    data = ["--data", f"folder:{tmp_path / 'data'}", "--val-size", "4", "-q"]
    assert main(["train", *data, "--model", "softmax", "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] != "failed" and summary["classes"] == ["caf\ufffd", "dog"]
    assert (tmp_path / "run" / "plots").is_dir() and any((tmp_path / "run" / "plots").iterdir())
    assert "caf\ufffd" in (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run"), *data[:2], "-q"]) == 0
    assert "caf\ufffd" in capsys.readouterr().out


def test_class_folders_that_would_read_the_same_are_refused_before_training(tmp_path, capsys):
    _image_folder(tmp_path / "data", [b"caf\xe9", b"caf\xe8", b"dog"])
    assert main(["train", "--data", f"folder:{tmp_path / 'data'}", "--model", "softmax", "--epochs", "1",
                 "--val-size", "6", "--out", str(tmp_path / "run"), "-q"]) == 1  # the data's error, as others
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "class folders b'caf\\xe8' and b'caf\\xe9' are not valid UTF-8 and would both be shown as" in err, err
    assert not (tmp_path / "run").exists()
