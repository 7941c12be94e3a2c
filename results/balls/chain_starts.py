"""Where the clamped Gibbs chains of trained harmoniums go wrong on bouncing balls.

For the chapter "Bouncing balls" (book/balls.py). The spec's protocol (§9.6) starts each
prediction chain from a noise frame and runs 25 Gibbs steps with u_{t-1} clamped. For saved
checkpoints of ``python -m tlr run balls ... --checkpoint-dir DIR`` this script scores, on the
first ``--n-test`` test sequences of the preset and seed (the runner's test set):

* ``noise, 25``: the spec's protocol (the runner's "mse", on this subset);
* ``noise, 200``: the same chain, eight times longer;
* ``previous, 25`` and ``previous, 0``: the chain started from the true previous frame
  y_{t-1} (``one_step_predictions(..., start="previous")``), with 25 steps and with none (the
  mean-field readout alone), which is not a protocol but a probe of what the model knows;

next to ORDER 0 on the same sequences. Regenerate, e.g.::

    PYTHONPATH=. .venv/bin/python results/balls/chain_starts.py --preset medium --seed 0 \\
        --checkpoint "TRBM, CD-5=DIR/balls_medium_seed0_TRBM.pt" ...

which writes ``results/balls/chain_starts_seed0.json`` (the checkpoints' own run records
are the results JSONs next to it; each label names its run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import torch

from tlr.evaluation.prediction import one_step_mse, one_step_predictions, order0_predictions
from tlr.experiments import balls as B
from tlr.models.refh import REFH, REFHConfig
from tlr.models.rtrbm import RTRBM
from tlr.models.trbm import TRBM, TRBMConfig
from tlr.provenance import provenance
from tlr.rng import make_generator, torch_threads
from tlr.train import load_checkpoint

CLASSES = {"rEFH": (REFH, REFHConfig), "TRBM": (TRBM, TRBMConfig), "RTRBM": (RTRBM, TRBMConfig)}
VARIANTS = (("noise", 25), ("noise", 200), ("previous", 25), ("previous", 0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--checkpoint", action="append", required=True,
                    help='"LABEL=PATH"; the model (rEFH, TRBM, RTRBM) is read from the file')
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    # at the start: the code that runs is the checkout's as it is now (run from the checkout
    # with PYTHONPATH=. so that its tlr is the one imported)
    prov = provenance("cpu", dt.datetime.now(dt.timezone.utc))
    preset = B.PRESETS[args.preset]
    rows = {}
    with torch_threads(1):
        test = B.test_data(preset, args.seed)[:, :args.n_test]
        order0 = one_step_mse(order0_predictions(test), test)
        for spec in args.checkpoint:
            label, path = spec.split("=", 1)
            state = torch.load(path, map_location="cpu", weights_only=False)
            name = state["model_name"]
            model_cls, config_cls = CLASSES[name]
            model = model_cls(config_cls(**state["config"]))
            epoch, hist = load_checkpoint(path, model)
            row = {"model": name, "checkpoint_epoch": epoch, "updates": hist.updates,
                   "n_cd_steps": state["config"]["n_cd_steps"], "file": Path(path).name}
            for start, n in VARIANTS:
                t0 = time.perf_counter()
                g = make_generator(args.seed, f"balls/chain_starts/{start}{n}")
                pred = one_step_predictions(model, test, n, g, start=start)
                row[f"{start}, {n}"] = one_step_mse(pred, test)
                row[f"{start}, {n} s"] = time.perf_counter() - t0
            rows[label] = row
            print(label, row, flush=True)
    out = Path(args.out or Path(__file__).with_name(f"chain_starts_seed{args.seed}.json"))
    out.write_text(json.dumps({"preset": args.preset, "seed": args.seed, "n_test": args.n_test,
                               "order0": order0, "rows": rows,
                               "provenance": prov}, indent=1))


if __name__ == "__main__":
    main()
