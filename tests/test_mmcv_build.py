"""scripts/build_mmcv.py's trimmed build: the source trimming on a synthetic mmcv tree, and the
installed mmcv running the ops detectors use on CPU."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from .conftest import ROOT

spec = importlib.util.spec_from_file_location("build_mmcv", ROOT / "scripts/build_mmcv.py")
build_mmcv = importlib.util.module_from_spec(spec)
sys.modules["build_mmcv"] = build_mmcv
spec.loader.exec_module(build_mmcv)

PYBIND = """#include <torch/extension.h>
Tensor nms(Tensor boxes, Tensor scores, float iou_threshold, int offset);
void carafe_forward(Tensor features, Tensor masks, Tensor output);
std::string get_compiler_version();

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("nms", &nms, "nms (CPU/CUDA) ", py::arg("boxes"), py::arg("scores"),
        py::arg("iou_threshold"), py::arg("offset"));
  m.def("carafe_forward", &carafe_forward, "carafe_forward", py::arg("features"),
        py::arg("masks"), py::arg("output"));
  m.def("get_compiler_version", &get_compiler_version, "get_compiler_version");
}
"""


def test_trim_keeps_the_chosen_ops_and_their_bindings(tmp_path):
    csrc = tmp_path / "mmcv/ops/csrc/pytorch"
    (csrc / "cpu").mkdir(parents=True)
    (csrc / "pybind.cpp").write_text(PYBIND)
    (csrc / "nms.cpp").write_text(
        "Tensor nms(Tensor boxes, Tensor scores, float iou_threshold,\n         int offset) {\n  return boxes;\n}\n"
    )
    (csrc / "carafe.cpp").write_text(
        "void carafe_forward(Tensor features, Tensor masks, Tensor output) {}\n"
    )
    (csrc / "info.cpp").write_text('std::string get_compiler_version() { return "gcc"; }\n')
    (csrc / "cpu/nms.cpp").write_text("// nms_cpu\n")
    (csrc / "cpu/bbox_overlaps_cpu.cpp").write_text("// bbox_overlaps_cpu\n")
    loader = tmp_path / "mmcv/utils/ext_loader.py"
    loader.parent.mkdir(parents=True)
    loader.write_text("if True:\n\n" + build_mmcv.LOADER)

    build_mmcv.trim(tmp_path, ("nms",))

    assert sorted(p.name for p in csrc.rglob("*.cpp")) == [
        "info.cpp",
        "nms.cpp",
        "nms.cpp",
        "pybind.cpp",
    ]
    pybind = (csrc / "pybind.cpp").read_text()
    assert '"nms", &nms' in pybind and '"get_compiler_version"' in pybind
    assert 'carafe_forward", &carafe' not in pybind
    assert pybind.count("m.def(") == 2 and pybind.rstrip().endswith("}")
    namespace: dict = {}
    exec(loader.read_text().replace("if True:", "import importlib\nif True:"), namespace)
    missing = namespace["_not_built"]("carafe_forward")
    with pytest.raises(NotImplementedError, match=r"carafe_forward.*TRANSFERNAS_MMCV_OPS=all"):
        missing()


def test_trim_refuses_a_source_it_does_not_know(tmp_path):
    csrc = tmp_path / "mmcv/ops/csrc/pytorch"
    csrc.mkdir(parents=True)
    (csrc / "pybind.cpp").write_text("// a pybind.cpp of another layout\n")
    with pytest.raises(SystemExit, match="bindings"):
        build_mmcv.trim(tmp_path, ("nms",))


def test_installed_mmcv_runs_the_detection_ops_on_cpu():
    from mmcv.ops import RoIAlign, batched_nms, nms
    from mmcv.utils import ext_loader

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5)[1].tolist() == [0, 2]
    _, keep = batched_nms(boxes, scores, torch.tensor([0, 1, 1]), {"iou_threshold": 0.5})
    assert sorted(keep.tolist()) == [0, 1, 2]  # different classes never suppress each other
    feats = torch.arange(64.0).reshape(1, 1, 8, 8)
    pooled = RoIAlign((1, 1), 1.0, sampling_ratio=2, aligned=False)(
        feats, torch.tensor([[0, 0, 0, 7, 7.0]])
    )
    assert pooled.item() == pytest.approx(feats.mean().item(), abs=1.0)
    if hasattr(ext_loader, "_not_built"):  # the trimmed build: an op left out says so
        from mmcv.ops import sigmoid_focal_loss

        with pytest.raises(NotImplementedError, match="TRANSFERNAS_MMCV_OPS=all"):
            sigmoid_focal_loss(torch.randn(3, 2), torch.tensor([0, 1, 0]))
