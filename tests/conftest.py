"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import emo.plugins

FIXTURES = Path(__file__).parent / "fixtures"
PLUGIN_DISTS = FIXTURES / "plugin_dists"


@pytest.fixture(autouse=True, scope="session")
def _no_installed_plugins() -> Iterator[None]:
    """Tests see only emo's built-ins (and the fixture plugins they ask for).

    Third-party plugins installed next to emo (broken ones included) must not change
    test results; subprocesses the tests start inherit the setting.
    """
    saved = os.environ.get(emo.plugins.registry.DISABLE_ENV)
    os.environ[emo.plugins.registry.DISABLE_ENV] = "1"
    emo.plugins.refresh()
    yield
    if saved is None:
        os.environ.pop(emo.plugins.registry.DISABLE_ENV, None)
    else:
        os.environ[emo.plugins.registry.DISABLE_ENV] = saved
    emo.plugins.refresh()


@pytest.fixture(autouse=True, scope="session")
def _random_default_model() -> Iterator[None]:
    """``emo generate`` without ``--model`` uses the tiny random preset in tests (fast plumbing).

    The bundled demo model has its own tests, which name it or clear the variable.
    """
    saved = os.environ.get("EMO_DEFAULT_MODEL")
    os.environ["EMO_DEFAULT_MODEL"] = "none"
    yield
    if saved is None:
        os.environ.pop("EMO_DEFAULT_MODEL", None)
    else:
        os.environ["EMO_DEFAULT_MODEL"] = saved


@pytest.fixture
def third_party_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put the fixture plugin distributions (real dist-info metadata) on ``sys.path``."""
    monkeypatch.syspath_prepend(str(PLUGIN_DISTS))
    monkeypatch.delenv("EMO_DISABLE_PLUGINS", raising=False)
    emo.plugins.refresh()
    yield PLUGIN_DISTS
    monkeypatch.undo()
    emo.plugins.refresh()


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Torch on one thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``).

    Tiny models gain nothing from more threads; on a busy 2-core CI machine they only
    add contention.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny_wav2vec2(folder: Path, norm: str) -> Path:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm=norm,
        do_stable_layer_norm=norm == "layer",
    )
    torch.manual_seed(0)
    Wav2Vec2Model(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def wav2vec2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random wav2vec2 (group norm, like wav2vec2-base) saved by transformers."""
    return _tiny_wav2vec2(tmp_path_factory.mktemp("w2v_group"), "group")


@pytest.fixture(scope="session")
def wav2vec2_layer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random wav2vec2 with layer-norm convolutions (like wav2vec2-large-lv60)."""
    return _tiny_wav2vec2(tmp_path_factory.mktemp("w2v_layer"), "layer")


@pytest.fixture(scope="session")
def wav2vec2_2conv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random wav2vec2 with two convolutions (stride 10): fast on long audio."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("w2v_2conv")
    Wav2Vec2Model(config).save_pretrained(folder)
    return folder
