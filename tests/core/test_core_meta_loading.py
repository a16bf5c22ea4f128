"""Loading builds on the meta device and assigns the weights: same values, no init, no copy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from emo.errors import EMOWarning
from emo.modeling import ModelMixin, load_state_dict_file
from emo.pipelines.components import MODEL_COMPONENTS
from emo.pipelines.emo_pipeline import EMOPipeline


def _plain_load(folder: Path, cls: type[ModelMixin], dtype: torch.dtype | None) -> ModelMixin:
    """The way every model was loaded before: initialise, copy the weights in, cast."""
    config = json.loads((folder / "config.json").read_text())
    model = cls.from_config(config)
    model.load_weights(load_state_dict_file(folder / "model.safetensors"))
    return model.to(dtype=dtype).eval() if dtype is not None else model.eval()


def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pipe = EMOPipeline.from_preset("tiny", audio_encoder="mel", face_mask="full", seed=3)
    assert pipe.backbone.speed_encoder is not None  # its buckets are non-persistent buffers
    return pipe.save_pretrained(tmp_path_factory.mktemp("meta") / "pipe")


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_meta_load_equals_the_plain_load_bit_for_bit(
    saved_tiny: Path, dtype: torch.dtype | None
) -> None:
    pipe = EMOPipeline.from_pretrained(saved_tiny, dtype=dtype)
    for name in MODEL_COMPONENTS:
        loaded = getattr(pipe, name)
        plain = _plain_load(saved_tiny / name, type(loaded), dtype)
        ours, theirs = _tensors(loaded), _tensors(plain)
        assert ours.keys() == theirs.keys(), name
        for key, value in ours.items():
            expected = theirs[key]
            assert value.dtype == expected.dtype and value.device == expected.device, key
            assert value.requires_grad == expected.requires_grad, key
            assert torch.equal(value, expected), key
        assert not loaded.training and not any(t.is_meta for t in ours.values())


def test_loading_draws_no_random_numbers(saved_tiny: Path) -> None:
    # A random initialisation draws from torch's global generator; the meta-device
    # build initialises nothing, so loading leaves the user's RNG where it was.
    before = torch.random.get_rng_state()
    EMOPipeline.from_pretrained(saved_tiny)
    assert torch.equal(torch.random.get_rng_state(), before)
    _plain_load(
        saved_tiny / "backbone", type(EMOPipeline.from_pretrained(saved_tiny).backbone), None
    )
    assert not torch.equal(torch.random.get_rng_state(), before)  # the plain way does draw


_CHILD = r"""
import sys, torch
from torch import nn
from emo.modeling import ModelMixin, load_state_dict_file

class Wide(ModelMixin):  # 64 MiB of float32 weights
    def __init__(self, width: int = 1024, depth: int = 16) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))

def status_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

folder, way = sys.argv[1], sys.argv[2]
if way == "save":
    Wide().save_pretrained(folder)
    Wide(8, 1).save_pretrained(folder + "/warm")
    sys.exit()
# The same load on a tiny model first: modules imported on first use (safetensors,
# the loaders) are not counted as the weights' memory.
if way == "plain":
    Wide(8, 1).load_weights(load_state_dict_file(folder + "/warm/model.safetensors"))
else:
    Wide.from_pretrained(folder + "/warm")
before = status_kib("VmRSS")
if way == "plain":
    model = Wide()
    model.load_weights(load_state_dict_file(folder + "/model.safetensors"))
else:
    model = Wide.from_pretrained(folder)
total = sum(float(p.sum()) for p in model.parameters())  # every weight read once
print(status_kib("VmHWM") - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux /proc")
def test_loaded_weights_are_not_a_copy(tmp_path: Path) -> None:
    # The plain load holds the weights twice (its init + the checkpoint's tensors);
    # the meta load reads the file straight into the parameters: once.
    added = {}
    for way in ("save", "meta", "plain"):
        run = subprocess.run(
            [sys.executable, "-c", _CHILD, str(tmp_path), way],
            capture_output=True,
            text=True,
            check=True,
        )
        if way != "save":
            added[way] = int(run.stdout.split()[-1])
    size_kib = (tmp_path / "model.safetensors").stat().st_size / 1024
    assert added["meta"] < 1.2 * size_kib, added  # the goal of the performance issue
    assert added["plain"] > 1.8 * size_kib, added  # the measure can see a copy


class Wide(ModelMixin):
    def __init__(self, width: int = 8, depth: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))


class Buckets(ModelMixin):
    """A module with a non-persistent buffer and no way to rebuild it: loaded the plain way."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.proj = nn.Linear(width, width)
        self.register_buffer("table", torch.arange(width, dtype=torch.float32), persistent=False)


def test_what_only_the_init_gives_falls_back_to_the_plain_load(tmp_path: Path) -> None:
    model = Buckets()
    model.save_pretrained(tmp_path)
    loaded = Buckets.from_pretrained(tmp_path)
    assert torch.equal(loaded.table, torch.arange(4.0))
    assert torch.equal(loaded.proj.weight, model.proj.weight)
    # A missing key with strict=False keeps the fresh initialisation (not a meta tensor).
    weights = load_file(tmp_path / "model.safetensors")
    weights.pop("proj.bias")
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.warns(EMOWarning, match="proj.bias"):
        partial = Buckets.from_pretrained(tmp_path, strict=False)
    assert not partial.proj.bias.is_meta and torch.isfinite(partial.proj.bias).all()
    assert torch.equal(partial.proj.weight, model.proj.weight)


def test_a_half_precision_file_loads_in_the_models_own_dtype(tmp_path: Path) -> None:
    model = Wide()
    model.save_pretrained(tmp_path)
    weights = {k: v.half() for k, v in load_file(tmp_path / "model.safetensors").items()}
    save_file(weights, tmp_path / "model.safetensors")
    loaded = Wide.from_pretrained(tmp_path)
    assert loaded.dtype == torch.float32  # as the plain load (copy into float32) gives
    assert torch.equal(loaded.layers[0].weight, weights["layers.0.weight"].float())


def test_files_are_standard_safetensors_with_aligned_tensors(tmp_path: Path) -> None:
    from emo._safetensors_io import ALIGNMENT, load_safetensors, read_safetensors

    tensors = {
        "bf16": torch.randn(3, 5).bfloat16(),
        "f16": torch.randn(7).half(),
        "i64": torch.arange(-3, 9),
        "flag": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
        "f32": torch.randn(16, 4),
        "f32_more": torch.randn(32),
    }
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    Wide().save_pretrained(tmp_path)  # through save_pretrained: the metadata survives
    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        assert f.metadata()["format"] == "pt"
    from emo._safetensors_io import write_safetensors

    write_safetensors(tensors, ours, {"format": "pt"})
    save_file(tensors, theirs)  # safetensors' own layout: offsets not aligned
    for path in (ours, theirs):
        reference = load_file(path)  # any safetensors reader reads emo's files
        for loaded in (load_safetensors(path), read_safetensors(path)):
            assert loaded.keys() == tensors.keys()
            for name, value in loaded.items():
                assert value.dtype == tensors[name].dtype, name
                assert torch.equal(value, tensors[name]) and torch.equal(value, reference[name])
                assert value.numel() == 0 or value.data_ptr() % ALIGNMENT == 0, (path, name)
    # Tensors of aligned sizes in emo's file are used where the file is mapped (the CPU
    # load copies nothing); the read way maps nothing.
    if Path("/proc/self/maps").exists():
        mapped = {k for k, v in load_safetensors(ours).items() if _mapped_from(v, ours)}
        assert {"f32", "f32_more"} <= mapped
        assert not any(_mapped_from(v, ours) for v in read_safetensors(ours).values())


def _mapped_from(tensor: torch.Tensor, path: Path) -> bool:
    """Whether ``tensor``'s memory is a mapping of the file ``path`` (Linux)."""
    address = tensor.data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if start <= address < end:
            return len(fields) == 6 and fields[5].strip() == str(path.resolve())
    return False


def test_damaged_weights_files_are_checkpoint_errors(tmp_path: Path) -> None:
    from emo._safetensors_io import load_safetensors, read_safetensors, write_safetensors
    from emo.errors import CheckpointError

    path = tmp_path / "w.safetensors"
    write_safetensors({"a": torch.randn(64), "b": torch.randn(3)}, path)
    whole = path.read_bytes()
    for damaged in (whole[:-3], whole[:5], b"\xff" * 8 + whole[8:], b"\x10" + whole[1:]):
        path.write_bytes(damaged)
        for reader in (load_safetensors, read_safetensors):
            with pytest.raises(CheckpointError, match=r"w\.safetensors"):
                reader(path)
