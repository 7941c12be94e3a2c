"""One training update replayed as a CUDA graph: the same kernels, launched once.

On a GPU the harmoniums' updates are bound by kernel launches, not arithmetic: a CD-25 update
on a 100-frame sequence is about 1400 small operations (the filter's 100 steps, then 25 Gibbs
steps of two groups), each a launch of a few microseconds, while the products themselves take
a fraction of that. A CUDA graph records the update's kernels once and replays them with one
launch (PyTorch's ``torch.cuda.graphs``).

What stays the same: the model's own ``update`` code, its arithmetic, and its random draws,
which come from the run's generator, registered with the graph so that every replay draws
fresh numbers further along the same stream. The capture needs two warm-up updates; the
generator's state is restored after them, so a graphed run draws the same numbers from the
same point as an eager CUDA run (tests/test_graphs.py compares the generator's state, the
filtered state and the gradients of one update, on a GPU).

Used by :func:`tlr.train.fit` (``cuda_graph=True``) for updates of whole sequences (``u0`` is
None); anything else (static pretraining, windows that carry a state) runs eagerly.
"""

from __future__ import annotations

import torch
from torch import nn

from tlr.models.base import Update

__all__ = ["GraphedUpdate"]


class GraphedUpdate:
    """``model.update(y, None, generator)`` as a replayed CUDA graph, one per input shape."""

    def __init__(self, model: nn.Module, generator: torch.Generator) -> None:
        if not torch.cuda.is_available():
            raise ValueError("cuda_graph=True needs a CUDA device, but CUDA is not available")
        devices = {p.device.type for p in model.parameters()}
        if devices != {"cuda"}:
            raise ValueError(f"cuda_graph=True needs the model on a CUDA device, got "
                             f"{', '.join(sorted(devices))}")
        if not isinstance(generator, torch.Generator) or generator.device.type != "cuda":
            got = generator.device if isinstance(generator, torch.Generator) else generator
            raise ValueError(f"cuda_graph=True needs a CUDA generator, got {got!r}")
        if not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
            raise ValueError(f"cuda_graph=True needs a torch whose CUDA graphs take a generator "
                             f"(CUDAGraph.register_generator_state), not torch {torch.__version__}")
        self.model, self.generator = model, generator
        self.graphs: dict[tuple, tuple] = {}

    def __call__(self, y: torch.Tensor, u0: torch.Tensor | None,
                 generator: torch.Generator | None) -> Update:
        """One update, as ``model.update(y, u0, generator)``; writes ``p.grad``."""
        if u0 is not None or generator is not self.generator:
            return self.model.update(y, u0, generator)
        key = (tuple(y.shape), y.dtype, y.device)
        if key not in self.graphs:
            self.graphs[key] = self._capture(y)
        graph, y_static, out, grads = self.graphs[key]
        y_static.copy_(y)
        graph.replay()
        for p, g in grads:  # the graph's gradient buffers, refreshed by the replay
            p.grad = g
        return out

    def _capture(self, y: torch.Tensor) -> tuple:
        y_static = y.clone()
        state = self.generator.get_state()
        side = torch.cuda.Stream(y.device)
        side.wait_stream(torch.cuda.current_stream(y.device))
        with torch.cuda.stream(side):  # warm-up: cuBLAS handles and workspaces, off the graph
            for _ in range(2):
                self.model.update(y_static, None, self.generator)
        torch.cuda.current_stream(y.device).wait_stream(side)
        self.generator.set_state(state)  # the warm-up's draws are not part of the run
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(self.generator)
        with torch.cuda.graph(graph):
            out = self.model.update(y_static, None, self.generator)
        grads = [(p, p.grad) for p in self.model.parameters() if p.grad is not None]
        return graph, y_static, out, grads
