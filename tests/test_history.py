import json

from transfernas.history import AppendLog, History


def test_records_survive_reopen(tmp_path):
    path = tmp_path / "h.jsonl"
    log = History(path)
    log.append([{"step": 0, "reward": 1.0, "metrics": {"a": 1}}])
    log.append(
        [{"step": 1, "reward": 3.0, "metrics": {"a": 2}}, {"step": 2, "reward": 2.0, "metrics": {}}]
    )
    again = History(path)
    assert list(again) == list(log)
    assert again.best()["step"] == 1
    assert again.to_frame()["a"].tolist()[:2] == [1, 2]


def test_torn_last_line_is_dropped_and_cut(tmp_path):
    path = tmp_path / "h.jsonl"
    AppendLog(path).append([{"step": 0}, {"step": 1}])
    with open(path, "a") as f:
        f.write('{"step": 2, "rew')  # the process died mid-write
    log = AppendLog(path)
    assert [r["step"] for r in log] == [0, 1]
    log.append([{"step": 2}])
    lines = path.read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [0, 1, 2]


def test_in_memory_log_writes_nothing(tmp_path):
    log = AppendLog(None)
    log.append([{"x": 1}])
    assert len(log) == 1 and not list(tmp_path.iterdir())


def test_reloaded_frame_equals_in_memory_frame(tmp_path):
    rows = [{"step": 0, "reward": 1.0, "arch": "a", "metrics": {"z": 1, "a": 2}}]
    log = History(tmp_path / "h.jsonl")
    log.append(rows)
    assert History(tmp_path / "h.jsonl").to_frame().equals(log.to_frame())
