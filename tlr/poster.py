"""The poster's own numbers, verbatim: the only results in the book that no code of ours computed.

Abdulsalam & Makin, "Learning Recurrent Models with Temporally Local Rules" (poster). Every
chapter that sets our numbers beside the poster's reads them from here.

- :data:`TABLE_1`: the LTI + PPC experiment, position MSE on the test trajectories (rad²). The
  poster marks the TRBM and RTRBM rows with an asterisk. It has no KF-true row.
- :data:`TABLE_2`: bouncing balls, one-step prediction MSE per pixel with clamped Gibbs
  sampling.

Rows are in the poster's order.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["TABLE_1", "TABLE_2", "TABLES"]

TABLE_1 = MappingProxyType({
    "ORDER 0": 12e-4, "TVAE": 9.5e-4, "TRBM": 6.0e-4, "KF-1": 5.8e-4,
    "rVAE": 5.3e-4, "rEFH": 3.3e-4, "RTRBM": 3.1e-4, "KF-2": 2.2e-4,
})
TABLE_2 = MappingProxyType({"ORDER 0": 0.0120, "TRBM": 0.0124, "rEFH": 0.0067, "RTRBM": 0.0059})
TABLES = MappingProxyType({"Table 1": TABLE_1, "Table 2": TABLE_2})
