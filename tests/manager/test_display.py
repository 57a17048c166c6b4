"""manager.display: the number formatting shared by the CLI and the dashboard."""
from __future__ import annotations

from manager import display as d


def test_shared_display_rules():
    """manager.display, used by the CLI and the dashboard: honest zeros, "—" for unknown."""
    assert [d.pct(v) for v in (-1e-9, -4e-5, -5.1e-5, None, float("nan"))] == [
        "0.00 %", "0.00 %", "-0.01 %", "—", "—"]
    assert d.pct(0.0, 3, signed=True) == "0.000 %" and d.pct(0.01234, signed=True) == "+1.23 %"
    assert [d.sign(v) for v in (-4e-5, -5.1e-5, 4e-5, 1e-3)] == ["", "neg", "", "pos"]
    assert d.sign(-4e-10, 8, 1.0) == "" and d.sign(-4e-8, 8, 1.0) == "neg"
    assert d.num(-0.004) == "0.00" and d.num(12345.678) == "12,345.68"
    assert d.money(1e-7, 1000) == "0" and d.money(-1e-7, 1000) == "0"  # below 1,000's 8 digits
    assert d.money(0.0002, 1000) == "0.0002" and d.money(989.24119171) == "989.24119"
    assert d.money(0.00012345) == "0.00012345" and d.money(1e-9) == "0" and d.money(1000) == "1,000"
    assert d.annualisation({"bars": 288, "timeframe": "5m"})["short"] == "annualised from 1 day, 288 bars of 5m"
    assert d.annualisation({"bars": 390, "timeframe": "1m"})["long"] == (
        "annualised from 6.5 h, 390 bars of 1m: per-bar ratio × √525,600 (bars in a 365-day year)")
    assert d.annualisation({"bars": 0, "timeframe": "5m"}) is None and d.annualisation(None) is None
    assert d.window_text("2018-01-15T00:00:00Z", "2018-01-16T00:00:00+00:00") == "2018-01-15 00:00 .. 2018-01-16 00:00"
