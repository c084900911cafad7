import numpy as np
import pytest
import torch

from radtool_vision.explain import explain
from radtool_vision.inference import load_run
from radtool_vision.batches import epoch_order
from radtool_vision.optim import create_optimizer, create_scheduler, default_batch_size, scaled_lr
from radtool_vision.training import TrainConfig, masked_bce, train
from radtool_vision.transforms import augment_params, prepare_batch
from radtool_vision.data_config import DataConfig
from synthetic import RUN_CLASSES


def test_augmentation_is_keyed_by_seed_epoch_and_image():
    a = augment_params(np.array([3, 7]), epoch=1, seed=0)
    np.testing.assert_array_equal(a, augment_params(np.array([3, 7]), epoch=1, seed=0))
    np.testing.assert_array_equal(a[1], augment_params(np.array([7]), epoch=1, seed=0)[0])
    assert not np.array_equal(a, augment_params(np.array([3, 7]), epoch=2, seed=0))


def test_prepare_batch_normalises_with_model_config():
    cfg = DataConfig(8, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    images = torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)
    x = prepare_batch(images, cfg, torch.device("cpu"))
    assert x.shape == (2, 3, 8, 8) and torch.allclose(x, torch.full_like(x, 2.0))
    params = torch.from_numpy(augment_params(np.arange(2), 1, 0))
    assert prepare_batch(images, cfg, torch.device("cpu"), params).shape == (2, 3, 8, 8)


def test_masked_bce_ignores_nan_targets():
    logits = torch.zeros(2, 2)
    total, count = masked_bce(logits, torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), None)
    assert int(count) == 3 and total.item() == pytest.approx(3 * np.log(2), rel=1e-6)


def test_schedule_warms_up_then_decays_to_one_percent():
    model = torch.nn.Linear(2, 2)
    opt = create_optimizer(model, 1e-3, 0.05, cuda=False)
    sched = create_scheduler(opt, 1e-3, warmup_steps=4, total_steps=20)
    lrs = []
    for step in range(21):
        sched.step_update(num_updates=step)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.25e-3) and lrs[4] == pytest.approx(1e-3)
    assert lrs[0] < lrs[1] < lrs[3] < lrs[4] and lrs[12] < 1e-3
    assert lrs[20] == pytest.approx(1e-5, rel=1e-6)


def test_no_weight_decay_on_norms_and_biases():
    from radtool_vision.plugins import load_plugin

    model = load_plugin("convnext").create_model("test_convnext", 2)
    opt = create_optimizer(model, 1e-3, 0.05, cuda=False)
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        assert decay[id(p)] == (0.0 if p.ndim <= 1 else 0.05), name


def test_default_batch_and_lr_follow_the_hardware():
    assert default_batch_size(256, 320, cuda=False) == 32
    assert default_batch_size(256, 320, cuda=True) == 256
    assert default_batch_size(256, 640, cuda=True, world_size=2) == 128
    assert scaled_lr(32) == pytest.approx(1e-4) and scaled_lr(128) == pytest.approx(2e-4)


def test_sampler_order_is_identical_across_calls():
    w = np.array([0.7, 0.1, 0.1, 0.1])
    np.testing.assert_array_equal(epoch_order(4, 3, 0, w), epoch_order(4, 3, 0, w))
    assert sorted(epoch_order(10, 1, 0, None)) == list(range(10))


def test_fusion_trains_and_explains(synthetic_set, tmp_path):
    run = tmp_path / "fusion"
    train(TrainConfig(
        plugin="fusion", arch="test_resnet+test_convnext", data=synthetic_set.csv, image_root=synthetic_set.root,
        out=run, classes=list(RUN_CLASSES), image_size=32, epochs=1, batch_size=16, pretrained=False,
        device="cpu", workers=1, amp="bf16", channels_last=True,  # the conversions of the CUDA path
    ))
    loaded = load_run(run, "cpu")
    assert loaded.arch == "test_resnet,test_convnext"
    written = explain(run, [synthetic_set.root / synthetic_set.rel_paths[0]], tmp_path / "cam", device="cpu",
                      classes=["Pneumonia"])
    assert len(written) == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_training_bf16_channels_last(synthetic_set, tmp_path):
    summary = train(TrainConfig(
        plugin="convnext", arch="convnext_atto", data=synthetic_set.csv, image_root=synthetic_set.root,
        out=tmp_path / "run", classes=list(RUN_CLASSES), image_size=64, epochs=2, batch_size=32,
        pretrained=False, device="cuda", workers=2,
    ))
    assert summary["device"] == "cuda" and summary["best_epoch"] >= 1
    loaded = load_run(tmp_path / "run", "cuda")
    assert next(loaded.model.parameters()).is_cuda


@pytest.mark.slow
def test_compiled_training_step_on_cpu(synthetic_set, tmp_path):
    """--compile (on by default on CUDA) through torch.compile's inductor on CPU; weights saved unwrapped."""
    summary = train(TrainConfig(
        plugin="resnet", arch="test_resnet", data=synthetic_set.csv, image_root=synthetic_set.root,
        out=tmp_path / "run", classes=list(RUN_CLASSES), image_size=32, epochs=1, batch_size=16,
        pretrained=False, device="cpu", workers=1, compile=True,
    ))
    assert summary["precision"]["compile"] is True and summary["best_epoch"] == 1
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in best["model"])
    assert load_run(tmp_path / "run", "cpu").model(torch.zeros(1, 3, 32, 32)).shape == (1, len(RUN_CLASSES))
