"""Balanced folding: the balanced design (double-buffered MVUs) keeps its multipliers busy
(busy multiplier-cycles over available ones, by the cycle model's II) with no more
multipliers than at most 4 x 8 a layer and about its speed; the budget search's prediction
is the plan's."""

from pathlib import Path

import pytest
from qfab.compiler.backend.balance import (
    MacLayer,
    balanced_budget,
    balanced_plan,
    mac_layers,
    multipliers,
    predicted_utilisation,
)
from qfab.compiler.backend.plan import plan, window_pace
from qfab.cost_model.fifo_sizing import peak_occupancy, sized_fifos
from qfab.cost_model.timing import steady_ii

from qfab.api import lower_model

ROOT = Path(__file__).resolve().parents[2]
MODELS = [ROOT / "examples" / "digits" / "digits_int8.onnx",
          ROOT / "examples" / "digits_resnet" / "digits_resnet_int8.onnx",
          ROOT / "tests" / "corpus" / "brevitas" / "tfc_w1a1_qonnx.onnx",
          ROOT / "tests" / "corpus" / "onnxruntime" / "mlp_softmax_qdq.onnx",
          ROOT / "tests" / "corpus" / "onnxruntime" / "cnn_inception_qdq.onnx",
          ROOT / "tests" / "corpus" / "brevitas" / "cnv_w1a1_qonnx.onnx",
          ROOT / "tests" / "corpus" / "keras" / "upsample_nhwc_qonnx.onnx",
          ROOT / "tests" / "corpus" / "keras" / "separable_nhwc_qonnx.onnx"]
BRANCHES = ROOT / "tests" / "corpus" / "onnxruntime" / "cnn_branches_qdq.onnx"
CNV = ROOT / "tests" / "corpus" / "brevitas" / "cnv_w1a1_qonnx.onnx"


def _utilisation(hw) -> float:
    return sum(s.macs for s in hw.stages) / (multipliers(hw) * steady_ii(hw))


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_balanced_design_keeps_multipliers_busy(path):
    graph = lower_model(path)
    capped, balanced = plan(graph), balanced_plan(graph)
    assert multipliers(balanced) <= multipliers(capped)
    assert steady_ii(balanced) <= 1.25 * steady_ii(capped)
    assert _utilisation(balanced) >= 0.95 > _utilisation(capped)
    # the search's prediction (stage cycles from the matrices and windows alone) holds
    layers = mac_layers(capped)
    floor = max((s.cycles for s in capped.stages if s.macs == 0), default=0)
    budget = balanced_budget(capped)
    predicted = predicted_utilisation(layers, budget, floor)
    assert predicted == pytest.approx(_utilisation(balanced))


def test_fewest_multipliers_meeting_a_budget():
    layer = MacLayer.of(10, 64, 1)  # 640 MACs: PE divides 10, SIMD divides 64
    assert layer.folding(640) == (1, 640)
    assert layer.folding(100) == (8, 80)    # 7 multipliers do not divide the matrix
    assert layer.folding(64) == (10, 64)
    assert layer.folding(1) == (640, 1)     # none meets it: fully parallel


def test_a_window_paces_the_stage():
    # conv1 of the digits CNN has one input channel: its window emits one pixel a beat, or
    # with a read port a kernel column up to a kernel row (three), so no folding of the stage
    # beats the pace of three; the balanced folding's nine SIMD lanes take a kernel row a
    # beat, which one port could not feed
    hw = balanced_plan(lower_model(MODELS[0]))
    conv1 = hw.stages[0]
    window = next(b for b in conv1.blocks if b.kind == "window")
    layer = mac_layers(hw)[0]
    assert min(cycles for _, cycles in layer.options) == window_pace(window, 1, 3)
    assert conv1.folding["simd"] == 9 and window.params["taps"] == 3
    assert window_pace(window, 1, 1) > conv1.cycles >= window_pace(window, 1, 3)


def test_fifos_sized_so_the_fork_does_not_wait():
    # the stem's output is also the second output: it waits in a FIFO until the logits of
    # its inference have left, while the stem computes the next ones; with room for one
    # inference the stem waits, and the design runs far slower than its slowest stage
    graph = lower_model(BRANCHES)
    budget = balanced_budget(plan(graph, double_buffered=True))
    unsized = plan(graph, budget_cycles=budget, double_buffered=True)
    assert steady_ii(unsized) > 1.5 * unsized.ii_cycles
    sized = sized_fifos(balanced_plan(graph))
    assert steady_ii(sized) == sized.ii_cycles == unsized.ii_cycles
    depths = [[b.params["depth"] for s in p.stages for b in s.blocks + s.skip
               if b.kind == "fifo"] for p in (unsized, sized)]
    assert all(new >= old for old, new in zip(*depths, strict=True))
    assert depths[1] != depths[0]
    import qfab  # qfab.compile sizes the balanced design's FIFOs beside its cycle model

    compiled = qfab.compile(BRANCHES, soc=False).plan
    assert [b.params["depth"] for s in compiled.stages for b in s.blocks + s.skip
            if b.kind == "fifo"] == depths[1]
    assert _utilisation(sized) >= 0.95


def test_peak_occupancy():
    assert peak_occupancy([0, 1, 2, 3], [2, 3, 4, 5]) == 2
    assert peak_occupancy([0, 5], [1, 6]) == 1
    assert peak_occupancy([], []) == 0


def test_windows_keep_the_slowest_stage_pace():
    # CNV's convolutions are unpadded: at an image's end a window of four row slots held
    # the last three rows and waited for two rows of the next image, and every stage after
    # it idled (II 10,930 against a slowest stage of 9,600)
    hw = balanced_plan(lower_model(CNV))
    assert steady_ii(hw) == hw.ii_cycles


def test_compile_builds_the_balanced_design_by_default():
    import qfab

    path = MODELS[0]
    balanced = balanced_plan(lower_model(path))
    default = qfab.compile(path, soc=False).plan
    assert [s.folding for s in default.stages] == [s.folding for s in balanced.stages]
    capped = qfab.compile(path, soc=False, max_pe=4).plan
    assert [s.folding for s in capped.stages] == [s.folding for s in plan(lower_model(path))
                                                    .stages]
