"""The NASNet cell space: five steps per block, masks, genotype strings, the stacked network."""

import numpy as np
import pytest
import torch

from transfernas.spaces.nasnet import COMBINE, OPS, STEPS, NASNetArch, NASNetSpace
from transfernas.tasks.trained import RewardConfig, TrainedTask, TrainingConfig

from .conftest import learnable_images

GENOTYPE = (
    "normal: add(sep_conv_3x3 p1, identity p2) cat(max_pool_3x3 b0, conv_1x1 p1) "
    "add(identity b1, sep_conv_5x5 b0) | "
    "reduce: add(max_pool_3x3 p1, sep_conv_7x7 p2) add(identity b0, avg_pool_3x3 p1) "
    "cat(conv_1x7_7x1 b1, dil_conv_3x3 p2)"
)


def test_decisions_are_the_five_steps_for_two_cells():
    space = NASNetSpace(blocks=5)
    assert len(space.choices) == 2 * 5 * STEPS == 50
    assert space.choices[:5] == (6, 6, len(OPS), len(OPS), len(COMBINE))
    assert len(OPS) == 13  # the NASNet paper's op list


def test_no_block_reads_a_state_that_does_not_exist():
    space = NASNetSpace(blocks=4)
    prefix: list[int] = []
    for _cell in range(2):
        for j in range(4):
            for step in range(STEPS):
                mask = space.mask(prefix)
                if step < 2:  # p1, p2 and the j blocks before: exactly 2 + j options
                    assert mask.tolist() == [True] * (2 + j) + [False] * (4 - 1 - j)
                else:
                    assert mask.all()
                prefix.append(int(np.flatnonzero(mask)[-1]))  # the latest state allowed
    arch = space.decode(prefix)
    for cell in (arch.normal, arch.reduce):
        assert [b.input1 for b in cell] == [1, 2, 3, 4]  # p2, then always the last block


def test_genotype_string_round_trip_and_errors():
    space = NASNetSpace(blocks=3)
    actions = space.encode(GENOTYPE)
    assert str(space.decode(actions)) == GENOTYPE
    assert actions[:5] == (0, 1, OPS.index("sep_conv_3x3"), OPS.index("identity"), 0)
    with pytest.raises(ValueError, match="not built yet"):
        space.encode(GENOTYPE.replace("max_pool_3x3 b0", "max_pool_3x3 b2"))
    with pytest.raises(ValueError, match="ops are"):
        space.encode(GENOTYPE.replace("sep_conv_3x3 p1", "sep_conv_9x9 p1"))
    with pytest.raises(ValueError, match="not a NASNet genotype"):
        NASNetArch.parse("normal: add(identity p1, identity p2)")
    with pytest.raises(ValueError, match="has 3 blocks, not 5"):
        NASNetSpace(blocks=5).encode(GENOTYPE)


def test_network_stacks_cells_reduces_and_concatenates_unused_states():
    space = NASNetSpace(blocks=3, channels=4, cells=2, stages=3)
    net = space.build(space.encode(GENOTYPE), num_classes=7)
    assert len(net.cells) == 3 * 2 + 2  # 2 normal cells per stage, 2 reduction cells
    normal, reduce = net.cells[0], net.cells[2]
    # normal: b0 and b1 are read, b2 is not → output = b2 only; reduce: b2 only too
    assert normal.outputs == [4] and normal.out_channels == 4
    assert reduce.outputs == [4] and reduce.out_channels == 8
    sizes = []
    net.cells[2].register_forward_hook(lambda m, i, o: sizes.append(o.shape))
    net.cells[5].register_forward_hook(lambda m, i, o: sizes.append(o.shape))
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    assert sizes == [(2, 8, 16, 16), (2, 16, 8, 8)]  # each reduction halves, doubles width


def test_ops_reading_the_cell_inputs_have_stride_two_in_reduction_cells():
    space = NASNetSpace(blocks=3, channels=4)
    reduce = space.build(space.encode(GENOTYPE), 3).cells[1]
    x = torch.randn(1, 8, 8, 8)
    pool_p1, sep_p2, identity_b0 = reduce.ops[0], reduce.ops[1], reduce.ops[2]
    assert pool_p1(x).shape[-1] == 4 and sep_p2(x).shape[-1] == 4
    assert identity_b0(x).shape[-1] == 8


def test_a_nasnet_candidate_trains_through_the_trained_task():
    train, val = learnable_images(64, 16, 3, seed=0), learnable_images(32, 16, 3, seed=1)
    space = NASNetSpace(blocks=2, channels=4)
    config = TrainingConfig(epochs=4, batch_size=32, crop_padding=0)
    task = TrainedTask("toy", space, train, val, 3, config, RewardConfig(measure_latency=False))
    actions = space.sample(np.random.default_rng(1))
    first = task.evaluate(actions)
    assert first.reward == task.evaluate(actions).reward  # seeded by the architecture
    assert first.metrics["val_acc"] > 50  # chance is 33 %
