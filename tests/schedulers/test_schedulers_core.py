"""The samplers' shared functional core: spacing and what a prediction means."""

from __future__ import annotations

import pytest
import torch

from emo.errors import ConfigError
from emo.schedulers.core import predicted_noise, predicted_x0, spaced_timesteps


def test_spacings_of_the_stable_diffusion_configs() -> None:
    assert spaced_timesteps("leading", 4, 1000, steps_offset=1).tolist() == [751, 501, 251, 1]
    assert spaced_timesteps("trailing", 4, 1000).tolist() == [999, 749, 499, 249]
    assert spaced_timesteps("linspace", 4, 1000).tolist() == [999, 666, 333, 0]
    fractional = spaced_timesteps("linspace", 4, 1000, round_linspace=False)
    assert fractional[1] == pytest.approx(666.0)
    # The multistep convention: n + 1 points, the lowest dropped.
    assert spaced_timesteps("linspace", 4, 1000, drop_first_train_step=True).tolist() == [
        999,
        749,
        500,
        250,
    ]
    assert spaced_timesteps("leading", 3, 1000, last=900, drop_first_train_step=True).tolist() == [
        675,
        450,
        225,
    ]
    with pytest.raises(ConfigError, match="timestep_spacing"):
        spaced_timesteps("uniform", 4, 1000)


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_every_prediction_type_gives_back_x0_and_the_noise(kind: str) -> None:
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 3, generator=gen), torch.randn(2, 3, generator=gen)
    alpha_bar = torch.tensor(0.3)
    alpha, sigma = alpha_bar**0.5, (1 - alpha_bar) ** 0.5
    x_t = alpha * x0 + sigma * noise
    output = {"epsilon": noise, "sample": x0, "v_prediction": alpha * noise - sigma * x0}[kind]
    recovered = predicted_x0(kind, output, x_t, alpha, sigma)
    torch.testing.assert_close(recovered, x0)
    torch.testing.assert_close(predicted_noise(recovered, x_t, alpha, sigma), noise)
