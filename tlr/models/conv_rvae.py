"""Convolutional rVAE, rVAE-BPTT and TVAE for video frames (Moving MNIST).

Sources §7.1 (the rVAE and its late fusion), §7.3 (proposals: Bernoulli pixels, 64-128 latents for
Moving MNIST), §7.4 (TVAE) and §10 (Moving MNIST). The models *are* :class:`RVAE` and
:class:`TVAE`: only the y-encoder trunk ``rec_y`` and the y-decoder ``gen_y`` change, from MLPs
to a conv stack and its transposed mirror. Everything else (scoring, windows, the temporally
local rule vs BPTT, filtering, ``predict_next`` at the mode of p̂(x_t | u_{t-1}) or by the
clamped-Gibbs analogue, rollouts) runs the same code.

Observations stay flattened, time-major (T, B, H·W), so nothing upstream changes; the trunk
reshapes to (N, 1, H, W) internally. Late fusion, as the poster says ("concatenating U_{t-1}
with Y_t only after encoding"):

    h_t = CNN(y_t),   (ν, log Υ) = rec_head([h_t, u_{t-1}]),   η_t = DeconvNet(x_t),

and p̂(y_t | x_t) = Bern(σ(η_t)) per pixel (or the poster's N(η_t, σ_y²)). A continuous
Bernoulli is not offered: it would need a change to ``tlr.models.rvae.obs_distribution``.

The conv rVAE-β: ``ConvRVAEConfig`` has the four rVAE-β fields of :class:`RVAEConfig`
(``kl_weight``, ``kl_warmup``, ``kl_weight0``, ``free_bits``, the same defaults and checks) and
its ``beta_vae`` property, which is all :class:`RVAE` reads: the β-weighted KL, the warm-up
clock ``n_updates`` and the name "rVAE-β" then work unchanged. The defaults are the ELBO: the
plain conv rVAE, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from tlr.models.rvae import RVAE, _check_common, check_kl_options, is_beta_vae, mlp
from tlr.models.tvae import TVAE
from tlr.validation import check_int

__all__ = ["ConvRVAEConfig", "ConvTVAEConfig", "ConvEncoder", "DeconvDecoder", "ConvRVAE",
           "ConvTVAE"]

CONV_LIKELIHOODS = ("bernoulli", "gaussian")


def _check_conv(c) -> None:
    """Validation of the image fields, shared by both configs."""
    check_int("image_size", c.image_size, 2)
    if not isinstance(c.channels, tuple) or not c.channels or any(
            isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in c.channels):
        raise ValueError(f"channels must be a non-empty tuple of ints >= 1, got {c.channels!r}")
    if c.image_size % 2 ** len(c.channels):
        raise ValueError(f"image_size ({c.image_size}) must be divisible by 2**len(channels) "
                         f"= {2 ** len(c.channels)}: every conv layer halves the frame")
    if c.likelihood not in CONV_LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {CONV_LIKELIHOODS} for pixels, "
                         f"got {c.likelihood!r}")
    _check_common(c)


@dataclass(frozen=True)
class ConvTVAEConfig:
    """Conv TVAE (and the shared fields of the conv rVAE). Sources §7.3-7.4, §10.

    ``n_obs`` is derived: image_size². Defaults are the scaled-down CPU setting (32 x 32
    frames, the non-standard ``MovingMNISTConfig.small()``); Sources §7.3 suggests 64-128 latents
    at the authors' 64 x 64.
    """

    image_size: int = 32  # square frames, H = W; divisible by 2**len(channels)
    channels: tuple[int, ...] = (16, 32, 64)  # conv trunk: k=4, stride 2 per layer (halves)
    n_latent: int = 32  # dim(X) << H·W: the poster's compression requirement
    n_units: int = 256  # width of h_t = CNN(y_t) and of the fusion / u / prior networks
    n_layers: int = 1  # hidden layers of the u-decoder (rVAE) or the prior network (TVAE)
    likelihood: str = "bernoulli"  # p(y | x) per pixel: "bernoulli" or the poster's "gaussian"
    sigma_y: float = 0.1  # Gaussian likelihood only (initial value if learned)
    learn_sigma: str = "diag"  # as RVAEConfig: "fixed", "scalar", "diag" or "cond"
    u_mode: str = "mean"  # u_{t-1} = ν_{t-1} (Sources §7.3)
    warm_start: int = 0  # filter(): u_0 = 0 (the state training starts from); >0: RVAE warm start
    bptt: bool = False  # keep the gradient through u_{t-1} (backprop through time)

    def __post_init__(self) -> None:
        _check_conv(self)

    @property
    def n_obs(self) -> int:
        """Pixels per frame, H·W."""
        return self.image_size**2


@dataclass(frozen=True)
class ConvRVAEConfig(ConvTVAEConfig):
    """Conv rVAE / rVAE-BPTT / rVAE-β: the TVAE fields plus σ_u of p̂(u_{t-1} | x_t) (Sources
    §7.1, §7.3) and the KL weight of the rVAE-β (as :class:`tlr.models.rvae.RVAEConfig`)."""

    # fixed value, or initial value when learned. 1, not RVAEConfig's 0.3: starting with a tight
    # p(u | x) on frames stalls learning at the mean-frame plateau (the u term dominates while
    # u is still noise); from 1 the learned σ_u anneals down once u carries information.
    sigma_u: float = 1.0
    # rVAE-β, as RVAEConfig: loss = β KL + nll_u + nll_y, β ramping linearly from ``kl_weight0``
    # to ``kl_weight`` over the first ``kl_warmup`` updates (0: β = ``kl_weight`` throughout);
    # ``free_bits`` > 0 floors each latent dimension's batch-mean KL. Defaults: the ELBO.
    kl_weight: float = 1.0
    kl_warmup: int = 0
    kl_weight0: float = 0.0
    free_bits: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_kl_options(self)

    @property
    def beta_vae(self) -> bool:
        """Whether the training loss differs from the negative ELBO (β ≠ 1, warm-up, free bits)."""
        return is_beta_vae(self)


class ConvEncoder(nn.Module):
    """The y-encoder trunk: flattened frames (…, H·W) → h (…, n_units). Never sees u.

    Conv(k=4, s=2, p=1) + ELU per entry of ``channels`` (each halves the frame), then a linear
    layer + ELU on the flattened feature map.
    """

    def __init__(self, image_size: int, channels: tuple[int, ...], n_units: int) -> None:
        super().__init__()
        self.image_size = image_size
        layers: list[nn.Module] = []
        for c_in, c_out in zip((1, *channels[:-1]), channels, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ELU()]
        side = image_size // 2 ** len(channels)
        layers += [nn.Flatten(1), nn.Linear(channels[-1] * side**2, n_units), nn.ELU()]
        self.net = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        lead = y.shape[:-1]
        # inputs drawn on the CPU (the U(0, 1) start of predict_next's Gibbs chain) follow the
        # weights, so prediction also runs on a GPU
        y = y.to(self.net[0].weight.device)
        h = self.net(y.reshape(-1, 1, s, s))  # (N, n_units)
        return h.reshape(*lead, h.shape[-1])


class DeconvDecoder(nn.Sequential):
    """η = the y-decoder: latents (…, n_latent) → per-pixel logits / means (…, H·W).

    Linear + ELU to n_units, linear + ELU to the smallest feature map, then ConvTranspose
    (k=4, s=2, p=1) per conv layer of the encoder, mirrored; the last one outputs 1 channel with
    no nonlinearity. An ``nn.Sequential`` so that ``gen_y[0]`` is its first Linear (RVAE reads
    the device from it).
    """

    def __init__(self, image_size: int, channels: tuple[int, ...], n_units: int,
                 n_latent: int) -> None:
        side = image_size // 2 ** len(channels)
        rev = channels[::-1]
        layers: list[nn.Module] = [nn.Linear(n_latent, n_units), nn.ELU(),
                                   nn.Linear(n_units, rev[0] * side**2), nn.ELU(),
                                   nn.Unflatten(1, (rev[0], side, side))]
        for i, (c_in, c_out) in enumerate(zip(rev, (*rev[1:], 1), strict=True)):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(rev) - 1:
                layers.append(nn.ELU())
        layers.append(nn.Flatten(1))
        super().__init__(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x = x.to(self[0].weight.device)  # latents drawn on the CPU (predict_next's Gibbs start)
        eta = super().forward(x.reshape(-1, x.shape[-1]))  # (N, H·W)
        return eta.reshape(*lead, eta.shape[-1])


class _ConvParts:
    """What the conv models change in :class:`RVAE` / :class:`TVAE`: trunk, decoder, init.

    A mixin placed before RVAE/TVAE in the MRO, so their ``__init__`` calls these methods.
    """

    def _build_common(self) -> None:
        """Conv y-trunk ``rec_y``, late-fusion head ``rec_head``, deconv y-decoder ``gen_y``."""
        c = self.config
        self.rec_y = ConvEncoder(c.image_size, c.channels, c.n_units)
        # the fusion of h_t and u_{t-1}: one hidden layer, as RVAE._build_common
        self.rec_head = mlp(c.n_units + c.n_latent, c.n_units, 2 * c.n_latent, n_layers=1)
        self.gen_y = DeconvDecoder(c.image_size, c.channels, c.n_units, c.n_latent)
        log_sy = torch.full((c.n_obs if c.learn_sigma in ("diag", "cond") else 1,),
                            math.log(c.sigma_y))
        if c.likelihood == "gaussian" and c.learn_sigma != "fixed":
            self.log_sigma_y = nn.Parameter(log_sy)
        else:
            self.register_buffer("log_sigma_y", log_sy)

    def _init_linear(self, generator: torch.Generator | None) -> None:
        """Re-draw every Linear *and conv* layer with ``generator`` (torch's default scheme:
        kaiming-uniform a=√5, bias U(±1/√fan_in)); None: keep the global-RNG draw."""
        if generator is None:
            return
        for mod in self.modules():
            if isinstance(mod, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_uniform_(mod.weight, a=math.sqrt(5), generator=generator)
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(mod.weight)  # as torch does
                bound = 1 / math.sqrt(fan_in)
                nn.init.uniform_(mod.bias, -bound, bound, generator=generator)


def _check_config(config, cls: type) -> None:
    if not isinstance(config, cls):
        raise TypeError(f"config must be a {cls.__name__}, got {type(config).__name__}")


class ConvRVAE(_ConvParts, RVAE):
    """Conv rVAE (``bptt=False``) or rVAE-BPTT (``bptt=True``) on flattened frames (T, B, H·W).

    Sources §7.1, §10. Same interface and names ("rVAE", "rVAE-BPTT", "rVAE-β") as
    :class:`RVAE`.
    """

    def __init__(self, config: ConvRVAEConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        config = ConvRVAEConfig() if config is None else config
        _check_config(config, ConvRVAEConfig)
        super().__init__(config, generator)


class ConvTVAE(_ConvParts, TVAE):
    """Conv TVAE (conditional prior p(x_t | u_{t-1}); u not reconstructed). Sources §7.4, §10."""

    def __init__(self, config: ConvTVAEConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        config = ConvTVAEConfig() if config is None else config
        _check_config(config, ConvTVAEConfig)
        if isinstance(config, ConvRVAEConfig):
            raise TypeError("ConvTVAE takes a ConvTVAEConfig (it has no σ_u), "
                            "got a ConvRVAEConfig")
        super().__init__(config, generator)
