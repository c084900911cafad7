import pytest
import torch

from radtool.errors import UserError
from radtool_vision.families import FAMILIES
from radtool_vision.plugins import available_plugins, load_plugin

# the smallest architecture of each family that timm offers (all built with pretrained=False)
TINY = {
    "convnext": "test_convnext",
    "densenet": "densenet121",
    "resnet": "test_resnet",
    "mobilenet": "mobilenetv3_small_050",
    "vgg": "vgg11",
    "efficientnet": "test_efficientnet",
    "fusion": "vgg11,test_resnet,test_convnext",
}


def test_every_family_in_the_table_is_an_entry_point():
    assert set(FAMILIES) == set(TINY) and set(FAMILIES) <= set(available_plugins())
    for name in FAMILIES:
        assert available_plugins()[name] == f"radtool_vision.plugins:{name}"


@pytest.mark.parametrize("name", sorted(TINY))
def test_plugin_builds_model_and_gradcam_layers(name):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from timm.data import resolve_model_data_config

    plugin = load_plugin(name)
    assert plugin.name == name and plugin.default_arch
    plugin.check_arch(plugin.default_arch)  # the default is a real timm model of the family
    torch.manual_seed(0)
    model = plugin.create_model(TINY[name], num_classes=3, pretrained=False).eval()
    x = torch.randn(2, 3, 64, 64)
    assert model(x).shape == (2, 3)
    cfg = plugin.data_config(model, image_size=64)
    source = model.branches[0] if name == "fusion" else model
    assert cfg.image_size == 64 and cfg.mean == tuple(resolve_model_data_config(source)["mean"])
    layers = plugin.gradcam_target_layers(model)
    assert layers and (name != "fusion" or len(layers) == 3)
    with GradCAM(model=model, target_layers=layers) as cam:
        heat = cam(input_tensor=x[:1], targets=[ClassifierOutputTarget(2)])
    assert heat.shape == (1, 64, 64)


@pytest.mark.parametrize("name,arch", [("resnet", "tv:resnet18"), ("mobilenet", "tv:mobilenet_v3_small")])
def test_torchvision_architectures(name, arch):
    plugin = load_plugin(name)
    model = plugin.create_model(arch, num_classes=2, pretrained=False).eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2)
    assert plugin.gradcam_target_layers(model)


@pytest.mark.parametrize(
    "name,arch,message",
    [
        ("resnet", "convnext_atto", "not in the resnet family"),
        ("convnext", "no_such_net", "unknown architecture"),
        ("vgg", "tv:resnet18", "not in the vgg family"),
        ("fusion", "resnet18", "at least two"),
    ],
)
def test_bad_arch_is_a_user_error(name, arch, message):
    with pytest.raises(UserError, match=message):
        load_plugin(name).check_arch(arch)


def test_unknown_plugin_lists_installed():
    with pytest.raises(UserError, match="installed plugins are: .*convnext"):
        load_plugin("transformer9000")


def test_local_weights_file_is_loaded_and_head_may_differ(tmp_path):
    plugin = load_plugin("resnet")
    torch.manual_seed(0)
    source = plugin.create_model("test_resnet", num_classes=5, pretrained=False)
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "w.pth")
    target = plugin.create_model("test_resnet", num_classes=2, pretrained=False, weights=tmp_path / "w.pth")
    assert torch.equal(target.conv1[0].weight, source.conv1[0].weight)
    assert target.fc.out_features == 2


def test_weights_that_do_not_fit_are_a_user_error(tmp_path):
    torch.save({"x": torch.zeros(3)}, tmp_path / "w.pt")
    with pytest.raises(UserError, match="no tensors that fit"):
        load_plugin("resnet").create_model("test_resnet", 2, weights=tmp_path / "w.pt")
    with pytest.raises(UserError, match="weights file not found"):
        load_plugin("resnet").create_model("test_resnet", 2, weights=tmp_path / "nope.pt")


def test_missing_pretrained_weights_are_a_user_error(monkeypatch):
    import timm

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    def offline(*args, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("offline")
        return original(*args, **kwargs)

    original = timm.create_model
    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(UserError, match="--no-pretrained"):
        load_plugin("resnet").create_model("test_resnet", 2, pretrained=True)


def _fake_hub_cache(root, repo_id, tensors):
    """The Hugging Face hub cache layout (refs/main -> snapshots/<commit>/model.safetensors)."""
    from safetensors.torch import save_file

    repo = root / "hub" / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(snapshot / "model.safetensors"))


def test_cached_pretrained_weights_load_without_any_request(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    plugin = load_plugin("resnet")
    torch.manual_seed(1)
    source = plugin.create_model("test_resnet", num_classes=1000)
    _fake_hub_cache(tmp_path, "timm/test_resnet.r160_in1k", source.state_dict())
    model = plugin.create_model("test_resnet", num_classes=2, pretrained=True)
    assert torch.equal(model.conv1[0].weight, source.conv1[0].weight)
    assert model.fc.out_features == 2


def test_offline_without_cached_weights_fails_in_one_line_naming_the_ways_out(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(UserError) as info:
        load_plugin("fusion").check_pretrained("test_resnet,test_convnext")
    message = str(info.value)
    assert "\n" not in message
    for fragment in ("--no-pretrained", "--weights", "HF_HUB_OFFLINE", "~/.cache/huggingface", str(tmp_path)):
        assert fragment in message
