"""AudioProjection: context windows, padded/unpadded equality, shapes, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emo.errors import InputError
from emo.models.audio_projection import AudioProjection, audio_context_window


def test_window_replicates_edges() -> None:
    features = torch.arange(5.0)[None, :, None, None].expand(1, 5, 2, 3)
    windows = audio_context_window(features, 2)
    assert windows.shape == (1, 5, 5, 2, 3)
    assert windows[0, :, :, 0, 0].tolist() == [
        [0, 0, 0, 1, 2],
        [0, 0, 1, 2, 3],
        [0, 1, 2, 3, 4],
        [1, 2, 3, 4, 4],
        [2, 3, 4, 4, 4],
    ]
    padded = audio_context_window(features, 2, padded=True)
    assert padded.shape == (1, 1, 5, 2, 3)
    assert padded[0, 0, :, 0, 0].tolist() == [0, 1, 2, 3, 4]
    assert audio_context_window(features, 0).shape == (1, 5, 1, 2, 3)


def test_padded_slice_equals_unpadded_inner_frames() -> None:
    torch.manual_seed(0)
    proj = AudioProjection(
        feature_dim=6, num_layers=3, context_frames=2, num_tokens=4, hidden_dim=16, output_dim=8
    ).eval()
    features = torch.randn(2, 20, 3, 6)
    with torch.no_grad():
        whole = proj(features)
        assert whole.shape == (2, 20, 4, 8)
        # Clip of frames 5..11 with 2 real context frames on each side.
        clip = proj(features[:, 3:14], padded=True)
    assert clip.shape == (2, 7, 4, 8)
    torch.testing.assert_close(clip, whole[:, 5:12])
    # Edge frames differ between a replicated edge and real context.
    with torch.no_grad():
        alone = proj(features[:, 5:12])
    assert not torch.allclose(alone[:, 0], whole[:, 5])
    torch.testing.assert_close(alone[:, 2:-2], whole[:, 7:10])
    assert proj.window(features).shape == (2, 20, 5, 3, 6)


def test_tokens_are_layer_normalised_and_saved(tmp_path: Path) -> None:
    proj = AudioProjection(
        feature_dim=4, num_layers=2, context_frames=1, num_tokens=2, hidden_dim=8, output_dim=6
    )
    out = proj(torch.randn(1, 3, 2, 4))
    torch.testing.assert_close(out.mean(-1), torch.zeros(1, 3, 2), atol=1e-5, rtol=0)
    proj.save_pretrained(tmp_path)
    loaded = AudioProjection.from_pretrained(tmp_path)
    x = torch.randn(1, 4, 2, 4)
    torch.testing.assert_close(loaded(x), proj(x))


def test_errors() -> None:
    proj = AudioProjection(
        feature_dim=4, num_layers=2, context_frames=2, hidden_dim=8, output_dim=8
    )
    with pytest.raises(InputError, match="layers"):
        proj(torch.zeros(1, 5, 4))
    with pytest.raises(InputError, match="another audio encoder"):
        proj(torch.zeros(1, 5, 3, 4))
    with pytest.raises(InputError, match="2m\\+1=5"):
        proj(torch.zeros(1, 4, 2, 4), padded=True)
    with pytest.raises(InputError, match="no frames"):
        proj(torch.zeros(1, 0, 2, 4))
