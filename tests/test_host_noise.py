"""benchmarks/host_noise.py (the statistics of measurement windows, no timing here), and the
argument checks of ratio_stability.py and entry_repeat.py."""

from __future__ import annotations

import pytest

from benchmarks import host_noise


def _runs(per_window: list[list[float]], window: float) -> list[tuple[float, float]]:
    """A timeline whose runs of window i are ``per_window[i]``, evenly spread inside it."""
    runs = []
    for i, times in enumerate(per_window):
        for j, ms in enumerate(times):
            runs.append((i * window + window * j / len(times), ms))
    runs.append((len(per_window) * window, per_window[-1][-1]))  # the timeline's end
    return runs


def test_the_fastest_run_stays_where_the_neighbours_move_the_median() -> None:
    quiet = [1.0] * 6 + [1.1] * 4
    busy = [1.0] * 2 + [1.5] * 8
    stats = host_noise.window_statistics(_runs([quiet, busy, quiet, busy], 1.0), 1.0)
    assert stats["min"]["sd_pct"] == pytest.approx(0.0)
    assert stats["median"]["windows"] == 4
    assert stats["median"]["low_ms"] == pytest.approx(1.0)
    assert stats["median"]["high_ms"] == pytest.approx(1.5)
    assert stats["median"]["sd_pct"] > 10


def test_windows_with_fewer_than_five_runs_are_left_out() -> None:
    stats = host_noise.window_statistics(_runs([[1.0] * 10, [2.0] * 3, [1.0] * 10], 1.0), 1.0)
    assert stats["median"]["windows"] == 2


def test_too_short_a_timeline_for_two_windows_is_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        host_noise.main(["--seconds", "4"])
    assert "--seconds must be at least 6" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--keep", "1.0"], "--keep must be in (0, 1)"),
        (["--repeats", "1"], "--repeats must be at least 2"),
    ],
)
def test_ratio_stability_refuses_bad_arguments_before_measuring(argv, message, tmp_path, capsys):
    from benchmarks import ratio_stability

    with pytest.raises(SystemExit):
        ratio_stability.main([*argv, "--out", str(tmp_path / "out")])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_entry_repeat_refuses_a_single_repeat(tmp_path, capsys):
    from benchmarks import entry_repeat

    with pytest.raises(SystemExit):
        entry_repeat.main(["--repeats", "1", "--out", str(tmp_path / "out")])
    assert "--repeats must be at least 2" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
