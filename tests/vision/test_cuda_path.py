"""The conversions the CUDA path makes, exercised on CPU for every family's *default* architecture.

On a GPU, training runs the model in channels_last memory format under bf16 autocast. A model that
cannot take those conversions (fusion's 5-D buffers once crashed ``model.to(memory_format=...)``)
must fail here, in CI without a GPU, not first on a GPU. Same code as training: the run's
:class:`Precision`, its ``prepare_model`` and :func:`train_step`; small inputs, pretrained=False.
"""

import math

import numpy as np
import pytest
import torch

from radtool_vision.families import FAMILIES
from radtool_vision.optim import create_optimizer, create_scheduler
from radtool_vision.plugins import load_plugin
from radtool_vision.runtime import Precision, resolve_precision
from radtool_vision.training import StepContext, train_step
from radtool_vision.transforms import augment_params, prepare_batch

SIZE = 32
CPU = torch.device("cpu")


def test_cuda_precision_is_bf16_and_channels_last():
    p = resolve_precision(torch.device("cuda", 0))
    assert (p.amp_dtype, p.channels_last, p.device_type) == (torch.bfloat16, True, "cuda")
    assert resolve_precision(CPU) == Precision("cpu", None, False)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_default_arch_trains_in_channels_last_and_bf16(name):
    plugin = load_plugin(name)
    torch.manual_seed(0)
    model = plugin.create_model(plugin.default_arch, num_classes=3, pretrained=False)
    precision = Precision("cpu", torch.bfloat16, channels_last=True)
    precision.prepare_model(model, CPU)  # model.to(memory_format=torch.channels_last), as on CUDA
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)

    optimizer = create_optimizer(model, 1e-3, 0.05, cuda=False)
    ctx = StepContext(model, optimizer, create_scheduler(optimizer, 1e-3, 0, 4), precision,
                      plugin.data_config(model, SIZE), CPU)
    images = torch.randint(0, 256, (2, 1, SIZE, SIZE), dtype=torch.uint8)
    targets = torch.tensor([[1.0, 0.0, math.nan], [0.0, 1.0, 1.0]])
    params = torch.from_numpy(augment_params(np.arange(2), epoch=1, seed=0))
    head = list(model.parameters())[-1]
    before = head.detach().clone()
    model.train()
    loss = train_step(ctx, images, targets, params, known_targets=5)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert head.grad is not None and torch.isfinite(head.grad).all()
    assert not torch.equal(before, head.detach())

    model.eval()
    x = prepare_batch(images, ctx.data_config, CPU, channels_last=True)
    with torch.no_grad(), precision.autocast():
        logits = model(x)
    assert logits.shape == (2, 3) and logits.dtype == torch.bfloat16
