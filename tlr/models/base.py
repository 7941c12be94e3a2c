"""The one interface every recurrent model of tlr obeys.

Every model (rEFH, TRBM, RTRBM, rVAE, rVAE-BPTT, TVAE, and the convolutional rVAE/TVAE for
video) is a :class:`RecurrentModel`: the same method names mean the same thing everywhere, so
training (:func:`tlr.train.fit`), evaluation (:mod:`tlr.evaluation.prediction`) and the
experiments never ask which model they hold.

Tensor layouts (one convention, library-wide)
---------------------------------------------
* ``y``: observations, **time-major** ``(T, B, n_obs)``: T steps of B parallel sequences.
  Images are flattened to ``n_obs = H·W`` pixels.
* ``u``: the filtered states, ``(T, B, n_state)``; ``u_prev`` / ``u0``: one step,
  ``(B, n_state)``. For the harmoniums the state is the hidden means (``n_state = n_hidden``),
  for the VAEs the posterior mean ν (``n_state = n_latent``). ``u_prev`` is u_{t-1}, the
  model's own previous state that the poster's local rule treats as data.
* A ``torch.Generator`` lives on the model's device; every random draw of a model comes from
  the generator it is given, so a seed fixes a run.

Methods
-------
``name``                   the poster's name ("rEFH", "rVAE-BPTT", ...).
``config``                 a frozen dataclass; ``tlr.models.build_model(name, **fields)``.
``initial_state(B)``       u_0, ``(B, n_state)``.
``filter(y, u0=None)``     states u_1..u_T ``(T, B, n_state)`` from the true observations.
``reconstruct(u)``         E[y_t | state u_t], ``(..., n_obs)``.
``update(y, u0=None, generator=None)``
                           ONE training step on the window y ``(T, B, n_obs)`` that starts from
                           u0 (None: ``initial_state``): writes the descent direction of every
                           parameter into ``p.grad`` (an optimiser then steps) and returns an
                           :class:`Update` with the last state, to carry into the next window.
``pretrain_update(y, n_cd_steps, generator=None)``
                           static pretraining of the observation weights (harmoniums only).
``predict_next(u_prev, n_gibbs=25, generator=None, *, y_init=None, method=None)``
                           the model's prediction of y_t from u_{t-1} alone, ``(B, n_obs)``.
``makin_groups()``          parameters in the order of Makin's per-group schedules (harmoniums).
``parameter_groups()``     ``{group: parameter-name prefixes}`` for per-group comparisons.
``local_and_bptt_gradients(y, u0=None, generator=None)``
                           (local-rule, full-BPTT) gradients of one objective, where a model
                           has both (rVAE/TVAE, TRBM/RTRBM).

A model that cannot do something (static pretraining of a VAE, a BPTT gradient of the rEFH's
joint objective) raises a ``ValueError`` that says so.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from tlr.validation import check_int

__all__ = ["Update", "RecurrentModel", "check_int", "check_y"]


class Update(NamedTuple):
    """What one training step hands back to the loop."""

    u: torch.Tensor  # (B, n_state) the state after the window's last step, detached
    loss: torch.Tensor | None  # the minimised loss (VAEs), detached; None for CD rules


def check_y(y: Any, n_obs: int | None = None, name: str = "y", min_T: int = 1) -> None:
    """Raise a clear error unless ``y`` is a time-major ``(T, B, n_obs)`` tensor."""
    ok = torch.is_tensor(y) and y.dim() == 3 and y.shape[0] >= min_T
    if ok and n_obs is not None:
        ok = y.shape[-1] == n_obs
    if not ok:
        got = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
        want = f"(T, B, {n_obs if n_obs is not None else 'n_obs'})"
        extra = f" with T >= {min_T}" if min_T > 1 else ""
        raise ValueError(f"{name} must have shape {want}{extra}, got {got}")


class RecurrentModel(nn.Module):
    """Base class of every tlr model; see the module docstring for the contract."""

    name: str
    config: Any

    # ------------------------------------------------------------------ shared helpers
    @property
    def n_obs(self) -> int:
        return self.config.n_obs

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_y(self, y: torch.Tensor) -> None:
        """Raise a clear error unless ``y`` is ``(T, B, n_obs)`` for this model."""
        check_y(y, self.config.n_obs)

    def check_state(self, u: torch.Tensor, batch: int | None = None,
                    name: str = "u_prev") -> None:
        """Raise a clear error unless ``u`` is ``(B, n_state)`` (B = ``batch`` if given)."""
        n = self.initial_state(1).shape[-1]
        ok = torch.is_tensor(u) and u.dim() == 2 and u.shape[-1] == n
        if ok and batch is not None:
            ok = u.shape[0] == batch
        if not ok:
            got = tuple(u.shape) if torch.is_tensor(u) else type(u).__name__
            raise ValueError(f"{name} must have shape ({batch if batch else 'B'}, {n}), "
                             f"got {got}")

    # ------------------------------------------------------------------ the interface
    def initial_state(self, batch: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def filter(self, y: torch.Tensor,
               u0: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def reconstruct(self, u: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def update(self, y: torch.Tensor, u0: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> Update:  # pragma: no cover
        raise NotImplementedError

    def predict_next(self, u_prev: torch.Tensor, n_gibbs: int = 25,
                     generator: torch.Generator | None = None, *,
                     y_init: torch.Tensor | None = None,
                     method: str | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def pretrain_update(self, y: torch.Tensor, n_cd_steps: int,
                        generator: torch.Generator | None = None) -> None:
        raise ValueError(f"{self.name} has no static pretraining (harmoniums only)")

    def makin_groups(self) -> list[nn.Parameter]:
        """Parameters in the order of Makin's per-group learning rates (Sources §5.4)."""
        raise ValueError(f"Makin's schedules are defined for harmoniums; {self.name} needs "
                         "OptimConfig('adam')")

    def parameter_groups(self) -> dict[str, tuple[str, ...]]:
        """Named groups of parameters worth comparing separately, as ``{group: name
        prefixes}`` (default: one group per trainable parameter)."""
        return {n: (n,) for n, p in self.named_parameters() if p.requires_grad}

    def local_and_bptt_gradients(self, y: torch.Tensor, u0: torch.Tensor | None = None,
                                 generator: torch.Generator | None = None
                                 ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        raise ValueError(f"{self.name} has no BPTT version of its own objective here; the "
                         "gradient comparison needs an rVAE/TVAE or a TRBM/RTRBM")
