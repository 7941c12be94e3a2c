"""How much training the rEFH needs on bouncing balls, and what does not shorten it.

For the chapter "Bouncing balls" (book/balls.py): the quick preset's rEFH (600 updates of
CD-5) is far from ORDER 0. Each row here trains one rEFH as ``tlr.experiments.balls.run``
does (same streams, schedule and scoring; the quick preset's 50 test sequences and 5
validation sequences, seed 0) with one change, and records the one-step MSE per pixel, the
training seconds (one CPU thread, shared machine) and the validation curve:

* ``base``: 4000 updates of CD-5 (10 epochs of 400 sequences), the spec's m0 = 50;
* ``lr x2``: m0 = 25 (η starts at 0.04);
* ``lr x4, 4 seqs/update``: m0 = 12.5 with four sequences per update (a larger batch);
* ``CD-25``: the spec's chain length, 1600 updates (about the same seconds as ``base``);
* ``pretrain 1000``: the first 1000 of the 4000 updates static (Makin: 30);
* ``15 x 15, 300 hidden``: Makin's '[Boulanger-Lewandowski2012]' size, 8000 updates
  (its own ORDER 0 is recorded: the frames differ).

Regenerate (about 12 minutes on one CPU thread)::

    PYTHONPATH=. .venv/bin/python results/balls/quick_sweep.py --seed 0

which writes ``results/balls/quick_sweep_seed0.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

from tlr.experiments import balls as B
from tlr.provenance import provenance
from tlr.train import OptimConfig


def _m0(m0: float) -> OptimConfig:
    return OptimConfig("makin-hyperbolic", m0=(m0,) * 5)


ROWS = {  # label: (harmonium overrides, preset overrides)
    "base": ({}, {}),
    "lr x2": ({"optim": _m0(25)}, {}),
    "lr x4, 4 seqs/update": ({"optim": _m0(12.5), "seqs_per_update": 4}, {}),
    "CD-25": ({"n_cd_steps": 25, "n_epochs": 4}, {}),
    "pretrain 1000": ({"n_pretrain": 1000}, {}),
    "15 x 15, 300 hidden": ({"n_hidden": 300, "n_epochs": 20}, {"resolution": 15,
                                                                 "eval_every": 4}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    # at the start: the code that runs is the checkout's as it is now (run from the checkout
    # with PYTHONPATH=. so that its tlr is the one imported)
    prov = provenance("cpu", dt.datetime.now(dt.timezone.utc))
    quick = B.PRESETS["quick"]
    rows = {}
    for label, (h, p) in ROWS.items():
        harmonium = replace(quick.harmonium, **{"n_epochs": 10, "n_seq": 400, **h})
        preset = replace(quick, name="sweep", harmonium=harmonium, **p)
        r = B.run(["ORDER 0", "rEFH"], preset, seed=args.seed, progress=False)
        info = r["rEFH"]["info"]
        rows[label] = {"order0": r["ORDER 0"]["mse"], "rEFH": r["rEFH"]["mse"],
                       "train_s": r["rEFH"]["train_s"], "updates": info["updates"],
                       "epochs": info["epochs"], "curve": info["curve"],
                       "n_cd_steps": harmonium.n_cd_steps, "resolution": preset.resolution,
                       "mse_from_previous_0": info["mse_from_previous_0"]}
        print(label, {k: v for k, v in rows[label].items() if k not in ("curve", "epochs")},
              flush=True)
    out = Path(args.out or Path(__file__).with_name(f"quick_sweep_seed{args.seed}.json"))
    out.write_text(json.dumps({"seed": args.seed, "rows": rows,
                               "provenance": prov}, indent=1))


if __name__ == "__main__":
    main()
