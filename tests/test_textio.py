"""The one reading path: encodings a brand's tools save, and clear refusals."""

import os

import pytest

from simdomain.errors import InputError
from simdomain.textio import read_text

TEXT = "name: 私域测试\nchannels: [企微活码, 包裹卡, 短信]\n" * 5


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "gb18030",
                                      "gbk", "utf-32"])
def test_reads_what_spreadsheet_tools_save(tmp_path, encoding):
    path = tmp_path / "s.yaml"
    data = TEXT.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    assert read_text(path) == TEXT


@pytest.mark.parametrize("data, says", [
    (os.urandom(4096), "binary"),
    ("name: café münchen señor\n".encode("latin-1") * 3, "save it as UTF-8"),
])
def test_refuses_what_is_not_text(tmp_path, data, says):
    path = tmp_path / "s.yaml"
    path.write_bytes(data)
    with pytest.raises(InputError) as info:
        read_text(path)
    assert says in str(info.value) and str(path) in str(info.value)


def test_refuses_folders_missing_and_oversized_files(tmp_path):
    for path in (tmp_path, tmp_path / "missing.yaml"):
        with pytest.raises(InputError):
            read_text(path)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a" * 2048)
    with pytest.raises(InputError, match="larger than the limit"):
        read_text(big, limit=1024)
