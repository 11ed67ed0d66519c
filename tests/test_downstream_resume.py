"""Downstream trainings across kills and reruns: the work dir a rerun resumes in, and the
per-iteration log (mmengine's scalars) of a killed then resumed training."""

from __future__ import annotations

import json

import pytest
import torch

from transfernas.downstream.detection import DetectionParams
from transfernas.downstream.resume import TorchRandomState
from transfernas.downstream.runner import resume_point, scalar_log
from transfernas.pipelines.downstream_nodes import loss_curves, run_setup


def _scalars(work_dir, run, rows, tail=""):
    path = work_dir / run / "vis_data" / "scalars.json"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


def _row(step, loss):
    return {"lr": 0.01, "loss": loss, "time": 0.1, "iter": step, "step": step}


def test_a_killed_then_resumed_training_logs_each_iteration_once(tmp_path):
    # killed after iteration 3 (its checkpoint is at 2) with a line half written; resumed at 2
    _scalars(tmp_path, "20261204_100000", [_row(1, 4.0), _row(2, 3.0), _row(3, 2.5)], '{"lr": 0.')
    _scalars(tmp_path, "20261204_100100", [_row(3, 2.0), _row(4, 1.0)])
    rows = scalar_log(tmp_path)
    assert [(r["step"], r["run"]) for r in rows] == [
        (1, "20261204_100000"),
        (2, "20261204_100000"),
        (3, "20261204_100100"),  # trained again after the kill: the resumed run's value
        (4, "20261204_100100"),
    ]
    assert loss_curves(rows) == {
        "train.loss": [
            {"step": 1, "value": 4.0},
            {"step": 2, "value": 3.0},
            {"step": 3, "value": 2.0},
            {"step": 4, "value": 1.0},
        ]
    }


def test_a_bad_line_inside_the_log_is_an_error(tmp_path):
    _scalars(tmp_path, "20261204_100000", [_row(1, 4.0)], "not json\n" + json.dumps(_row(2, 3.0)))
    with pytest.raises(json.JSONDecodeError):
        scalar_log(tmp_path)


def test_a_rerun_resumes_in_the_same_work_dir_whatever_the_cards_measurements(tmp_path):
    """export_backbone measures the backbone's latency again on every rerun: the card changes,
    the training it feeds must not start over."""
    weights = {"conv.weight": torch.ones(2, 3), "bn.num_batches_tracked": torch.tensor(5)}
    card = {"backbone": {"type": "TransferNASResNet", "arch": "64_1-1-1-1"}, "latency": {"ms": 3}}
    config = DetectionParams(work_dir=str(tmp_path))
    data = {"ann_file": "a.json"}

    def work_dir(weights=weights, card=card, data=data):
        return run_setup(config, weights, card, data)[0].work_dir

    first = work_dir()
    assert work_dir(card=card | {"latency": {"ms": 4}}) == first
    assert work_dir(weights=weights | {"conv.weight": torch.ones(2, 3) * 2}) != first
    assert work_dir(card=card | {"backbone": card["backbone"] | {"arch": "64_2-1-1-1"}}) != first
    assert work_dir(data={"ann_file": "b.json"}) != first


def test_the_torch_generator_is_put_back_before_the_first_resumed_iteration():
    hook = TorchRandomState()
    checkpoint: dict = {}
    torch.manual_seed(0)
    hook.before_save_checkpoint(None, checkpoint)
    expected = torch.rand(3)  # what the uninterrupted training draws next
    torch.manual_seed(0)
    torch.rand(100)  # a resumed run: reseeded, its data loader replayed
    hook.after_load_checkpoint(None, checkpoint)
    hook.before_train_iter(None, 0)
    assert torch.equal(torch.rand(3), expected)
    hook.before_train_iter(None, 1)  # once only: later iterations draw on
    assert not torch.equal(torch.rand(3), expected)
    hook.after_load_checkpoint(None, {})  # a checkpoint written without the hook
    hook.before_train_iter(None, 0)


def test_resume_point_is_the_newest_checkpoint_written_to_its_end(tmp_path):
    assert resume_point(tmp_path) is None
    for step in (2, 4, 10):
        torch.save({"meta": {"iter": step}}, tmp_path / f"iter_{step}.pth")
    (tmp_path / "iter_best.pth").write_bytes(b"")  # not a step
    assert resume_point(tmp_path) == tmp_path / "iter_10.pth"  # by number, not by name
    whole = (tmp_path / "iter_10.pth").read_bytes()
    (tmp_path / "iter_10.pth").write_bytes(whole[: len(whole) // 2])  # killed while writing
    assert resume_point(tmp_path) == tmp_path / "iter_4.pth"
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "iter_2.pth"))
    (tmp_path / "iter_2.pth").unlink()  # mmengine deletes the old one before naming the new
    assert resume_point(tmp_path) == tmp_path / "iter_4.pth"


def test_a_finished_training_is_read_back_without_data_check_runner_or_latency(
    tmp_path, monkeypatch
):
    from types import SimpleNamespace

    from transfernas.pipelines import downstream_nodes

    calls: list[str] = []

    def prepare(data):
        calls.append("prepare")
        return {}, {"images": 2}

    def build(backbone, channels, data, prepared, config):
        calls.append("build")
        return {"model": "retina", "work_dir": config.work_dir}

    def train_and_report(kind, cfg, latency, card):
        calls.append("train")
        rows = [_row(1, 2.0), _row(2, 1.5)]
        metrics = {"coco.bbox_mAP": {"value": 0.25, "step": 0}}
        return metrics, None, {"task": kind, "metrics": {"coco/bbox_mAP": 0.25}}, rows

    kind = SimpleNamespace(params=DetectionParams, prepare=prepare, build=build)
    monkeypatch.setitem(downstream_nodes.KINDS, "detection", kind)
    monkeypatch.setattr(downstream_nodes, "train_and_report", train_and_report)
    monkeypatch.setattr(downstream_nodes, "config_text", lambda cfg: repr(sorted(cfg)))
    weights = {"conv.weight": torch.ones(2, 3)}
    card = {"backbone": {"type": "TransferNASResNet"}, "arch": "64_1-1-1-1", "stage_channels": [8]}
    params = {"work_dir": str(tmp_path)}
    data = {"ann_file": "a.json"}
    first = downstream_nodes.train_downstream("detection", weights, card, data, params)
    assert calls == ["prepare", "build", "train"]
    again = downstream_nodes.train_downstream("detection", weights, card, data, params)
    assert calls == ["prepare", "build", "train"]  # nothing more
    assert again[0] == first[0] and again[2] == first[2] and again[3] == first[3]
    assert again[2]["data"] == {"images": 2} and again[1] is not None  # the loss plot, redrawn
    other = params | {"latency": {"sizes": [[96, 96]]}}  # other latency settings: measured anew
    downstream_nodes.train_downstream("detection", weights, card, data, other)
    assert calls.count("train") == 2
