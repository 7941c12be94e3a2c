"""tlr: learning recurrent models with temporally local rules (Abdulsalam & Makin, ICML 2023 LLW).

Tensors are time-major throughout: observations ``y`` have shape ``(T, B, n_obs)``, latents
``(T, B, n_hidden)``. Subpackages:

- :mod:`tlr.data` -- data generators (LTI + PPC);
- :mod:`tlr.filters` -- Kalman filter, RTS smoother, EM for linear dynamical systems;
- :mod:`tlr.evaluation` -- population-code readout (circular centre of mass) and torus MSE;
- :mod:`tlr.experiments` -- presets and the model registry behind ``python -m tlr run``.
"""

__version__ = "0.1.0"
