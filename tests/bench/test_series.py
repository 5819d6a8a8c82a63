"""bench.series: a target counts as met only when it held in every run."""

import json

from bench import series


def _run(directory, commit, p99):
    directory.mkdir()
    target = {"scenario": "1", "what": "get p99", "op": "<", "threshold": 25.0, "unit": "ms"}
    doc = {
        "meta": {"commit": commit, "started_at": "t", "seconds": 1, "machine": {"other_cores": 0}},
        "targets": [{**target, "measured": p99, "ok": None}],
        "scenarios": {},
    }
    (directory / "latest.json").write_text(json.dumps(doc))
    return directory


def test_a_target_missed_in_one_run_is_not_met(tmp_path, capsys):
    dirs = [_run(tmp_path / "a", "abc", 3.0), _run(tmp_path / "b", "abc", 30.0)]
    out = tmp_path / "series.md"
    assert series.main([*map(str, dirs), "--out", str(out)]) == 0
    text = out.read_text()
    assert "0 of 1 targets met in every run" in text
    assert "| 1 | get p99 | < 25 ms | 3 ms | 30 ms ✗ | missed in 1 |" in text
    assert text in capsys.readouterr().out


def test_held_in_every_run(tmp_path):
    dirs = [_run(tmp_path / str(i), "abc", 3.0 + i) for i in range(3)]
    text = series.render([series.load(d) for d in dirs])
    assert "1 of 1 targets met in every run" in text
    assert "met in all" in text
