"""`cohortlab data download` (the download extra; no network is reached here)."""
from __future__ import annotations


def test_data_download_unknown_exchange_is_a_clear_error(tmp_path, cli):
    res = cli("data", "download", "--exchange", "nope", "--symbols", "ETH/BTC", "--days", 1,
              "--out", tmp_path)
    assert res.exit_code != 0 and "nope" in res.output
