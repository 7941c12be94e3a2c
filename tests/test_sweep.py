"""``python -m tlr sweep`` / ``summarize`` (tlr.sweep): file names, manifest, resume, failures,
the SLURM submission script, and the summary statistics against a hand computation."""

import hashlib
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("submitit")
pytest.importorskip("yaml")

import submitit  # noqa: E402

from tlr.cli import UsageError, main, run_json  # noqa: E402
from tlr.experiments import balls, ppc  # noqa: E402
from tlr.sweep import (  # noqa: E402
    Run,
    Sweep,
    grid_names,
    grid_path,
    load_grid,
    plot_summary,
    run_sweep,
    set_axes,
    summarize,
    summary_rows,
    t_quantile,
)

ROOT = Path(__file__).resolve().parents[1]
# The brief's tiny grid: 2 cheap models x 2 seeds x a 2-value axis (n_test), T_test fixed.
GRID = ["ppc", "--preset", "quick", "--models", "ORDER 0,KF-true", "--seeds", "0,1",
        "--set", "T_test=50", "--set", "n_test=2", "--set", "n_test=3"]
TINY = Sweep("ppc", "quick", ("ORDER 0", "KF-true"), (0, 1),
             ({"T_test": ["50"], "n_test": ["2", "3"]},))


def _name(model: str, seed: int, n_test: str) -> str:
    """The file name, computed here from the documented rule."""
    h = hashlib.sha1(json.dumps({"T_test": "50", "n_test": n_test}, sort_keys=True).encode())
    return f"ppc_quick_{model}_seed{seed}_T_test=50_n_test={n_test}_{h.hexdigest()[:8]}.json"


EXPECTED = sorted(_name(m, s, n) for m in ("ORDER-0", "KF-true") for s in (0, 1)
                  for n in ("2", "3"))


def _manifest(out: Path) -> dict:
    return json.loads((out / "sweep.json").read_text())


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory) -> Path:
    """The tiny grid, run once on submitit's LocalExecutor (2 processes at a time)."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    assert main(["sweep", *GRID, "--executor", "local", "--jobs", "2", "--out", str(out)]) == 0
    return out


def test_local_sweep_files_manifest_and_json(local_sweep):
    out = local_sweep
    assert sorted(p.name for p in out.glob("*.json") if p.name != "sweep.json") == EXPECTED
    man = _manifest(out)
    assert man["sweep"]["settings"] == [{"T_test": "50", "n_test": "2"},
                                        {"T_test": "50", "n_test": "3"}]
    assert man["sweep"]["models"] == ["ORDER 0", "KF-true"] and man["sweep"]["seeds"] == [0, 1]
    assert man["executor"]["kind"] == "local" and man["executor"]["jobs"] == 2
    assert sorted(r["file"] for r in man["runs"]) == EXPECTED
    assert all(r["status"] == "done" and r["attempts"] == 1 and r["error"] is None
               for r in man["runs"])
    assert man["counts"]["done"] == 8 and sorted(man["ran"]) == EXPECTED
    for r in man["runs"]:
        res = json.loads((out / r["file"]).read_text())
        assert {"experiment", "preset", "seed", "results", "details", "overrides",
                "provenance"} <= set(res)
        assert (res["experiment"], res["preset"], res["seed"]) == ("ppc", "quick", r["seed"])
        assert res["overrides"] == r["overrides"] and list(res["results"]) == [r["model"]]
        assert "failed" not in res and math.isfinite(res["results"][r["model"]]["mse"])
        prov = res["provenance"]
        assert {"git", "torch", "device", "started", "threads", "wall_s"} <= set(prov)
        assert prov["threads"] == 1 and prov["device"].startswith("cpu")
        assert prov["command"].startswith("python -m tlr run ppc --preset quick --models")
        assert prov["command"].endswith(str(out / r["file"]))
    # The same numbers as `tlr run` in this process (one code path: tlr.cli.run_json).
    r = next(r for r in man["runs"] if r["model"] == "ORDER 0" and r["seed"] == 1)
    mine = run_json("ppc", "quick", ["ORDER 0"], 1, r["overrides"])
    saved = json.loads((out / r["file"]).read_text())
    assert saved["results"]["ORDER 0"]["mse"] == mine["results"]["ORDER 0"]["mse"]


def test_resume_skips_finished_and_reruns_missing_or_broken(local_sweep):
    out = local_sweep
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("ppc_*.json")}
    # Again: nothing to run (no process is started).
    assert main(["sweep", *GRID, "--executor", "local", "--jobs", "2", "--out", str(out)]) == 0
    assert _manifest(out)["ran"] == []
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("ppc_*.json")} == before
    # A deleted run and a truncated one are run again, and nothing else.
    gone, broken = EXPECTED[0], EXPECTED[5]
    (out / gone).unlink()
    (out / broken).write_text((out / broken).read_text()[:50])
    man = run_sweep(TINY, out, "debug")
    assert sorted(man["ran"]) == sorted([gone, broken])
    assert all(r["status"] == "done" for r in man["runs"])
    assert {r["file"]: r["attempts"] for r in man["runs"]} == {
        f: 2 if f in (gone, broken) else 1 for f in EXPECTED}
    json.loads((out / broken).read_text())  # whole again


def test_failed_runs_are_recorded_not_fatal_and_retried(tmp_path, monkeypatch, capsys):
    """A diverging run (FloatingPointError: listed under "failed" in its JSON) and a crashing
    one (no JSON) are failed in the manifest; the others finish; the next invocation retries
    exactly those two."""
    original = ppc.PPC.baseline

    def flaky(name, preset, seed, data):
        if name == "KF-true" and seed == 1:
            raise FloatingPointError("training diverged at epoch 1, step 3: test")
        if name == "ORDER 0" and seed == 0 and preset.n_test == 3:
            raise RuntimeError("boom")
        return original(name, preset, seed, data)

    monkeypatch.setattr(ppc.PPC, "baseline", flaky)
    out = tmp_path / "out"
    assert main(["sweep", *GRID, "--executor", "debug", "--out", str(out)]) == 1
    man = _manifest(out)
    failed = {r["file"]: r["error"] for r in man["runs"] if r["status"] == "failed"}
    diverged = [_name("KF-true", 1, n) for n in ("2", "3")]
    crashed = _name("ORDER-0", 0, "3")
    assert sorted(failed) == sorted(diverged + [crashed]) and man["counts"]["done"] == 5
    assert failed[crashed] == "RuntimeError: boom" and not (out / crashed).exists()
    for f in diverged:
        assert failed[f].startswith("training diverged at epoch 1")
        assert json.loads((out / f).read_text())["failed"] == {"KF-true": failed[f]}
    assert f"FAILED {crashed}: RuntimeError: boom" in capsys.readouterr().out

    monkeypatch.setattr(ppc.PPC, "baseline", original)
    assert main(["sweep", *GRID, "--executor", "debug", "--out", str(out)]) == 0
    man = _manifest(out)
    assert sorted(man["ran"]) == sorted(failed)
    assert all(r["status"] == "done" for r in man["runs"])
    assert all(r["attempts"] == (2 if r["file"] in failed else 1) for r in man["runs"])


def test_real_divergence_is_a_failed_run(tmp_path):
    """The rEFH at lr 1e3 diverges in its first epoch (as in test_cli): failed, not fatal."""
    sweep = Sweep("ppc", "quick", ("rEFH", "ORDER 0"), (0,),
                  ({"n_test": "8", "T_test": "300", "refh.optim.lr": "1e3"},))
    man = run_sweep(sweep, tmp_path, "debug")
    status = {r["model"]: r for r in man["runs"]}
    assert status["ORDER 0"]["status"] == "done" and status["rEFH"]["status"] == "failed"
    assert status["rEFH"]["error"].startswith("training diverged at epoch 1, step ")


def test_slurm_submission_script(tmp_path, monkeypatch):
    """Down to sbatch without a cluster: submitit writes the script, `sbatch` is replaced by
    echo. Partition, time, GPUs, memory and the array's parallelism are in the script; the
    next invocation re-attaches jobs still queued and resubmits the others."""
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))
    monkeypatch.setattr(submitit.SlurmExecutor, "_make_submission_command",
                        lambda self, path: ["echo", "Submitted batch job 4242"])
    out = tmp_path / "out"
    args = ["sweep", *GRID, "--executor", "slurm", "--partition", "gpu", "--time", "30",
            "--gpus", "1", "--array-parallelism", "3", "--mem", "16", "--no-wait",
            "--out", str(out)]
    assert main(args) == 0
    script = (out / "logs" / "4242_submission.sh").read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=30", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --array=0-7%3", "#SBATCH --mem=16GB", "#SBATCH --cpus-per-task=1",
                 "#SBATCH --job-name=tlr-sweep"):
        assert line in script.splitlines(), line
    assert "submitit.core._submit" in script
    man = _manifest(out)
    assert sorted(r["job_id"] for r in man["runs"]) == sorted(f"4242_{i}" for i in range(8))
    assert all(r["status"] == "submitted" for r in man["runs"])

    watcher = submitit.slurm.slurm.SlurmInfoWatcher
    monkeypatch.setattr(watcher, "get_state", lambda self, job_id, mode="standard": "RUNNING")
    assert main(args) == 0
    assert _manifest(out)["ran"] == []  # still queued: re-attached, not submitted twice
    monkeypatch.setattr(watcher, "get_state", lambda self, job_id, mode="standard": "FAILED")
    assert main(args) == 0
    assert sorted(_manifest(out)["ran"]) == EXPECTED


def test_local_jobs_see_the_gpus(tmp_path, monkeypatch):
    """submitit's LocalExecutor sets CUDA_VISIBLE_DEVICES to its gpus_per_node GPUs (none by
    default): the sweep shows the runs every GPU unless --gpus says otherwise."""
    import torch

    from tlr.sweep import make_executor

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert make_executor("local", tmp_path).parameters["gpus_per_node"] == 2
    assert make_executor("local", tmp_path, gpus=0).parameters["gpus_per_node"] == 0


# ------------------------------------------------------------------ grids and file names


def test_set_axes_tuples_and_file_names():
    axes = set_axes(["T_test=50", "n_test=2", "n_test=3", "n_test=2",
                     "harmonium.optim.m0=50,12.5,50,50,12.5"])
    assert axes == {"T_test": ["50"], "n_test": ["2", "3"],
                    "harmonium.optim.m0": ["50,12.5,50,50,12.5"]}
    with pytest.raises(UsageError, match="KEY=VALUE"):
        set_axes(["n_test"])
    s = Sweep("balls", "medium", ("rEFH",), (0,),
              ({"harmonium.optim.m0": [[50, 12.5, 50, 50, 12.5], "1500,150,1500,1500,150"],
                "harmonium.n_epochs": 3},))
    assert s.settings() == [
        {"harmonium.optim.m0": "50,12.5,50,50,12.5", "harmonium.n_epochs": "3"},
        {"harmonium.optim.m0": "1500,150,1500,1500,150", "harmonium.n_epochs": "3"}]
    names = [r.file_name for r in s.runs()]
    assert len(set(names)) == 2 and names == [r.file_name for r in s.runs()]
    assert names[0].startswith("balls_medium_rEFH_seed0_m0=50-12.5-50-50-12.5_n_epochs=3_")
    # the name depends on the setting, not on the order its keys were given in
    a = Run("ppc", "quick", "ORDER 0", 0, (("T_test", "50"), ("n_test", "2")))
    b = Run("ppc", "quick", "ORDER 0", 0, (("n_test", "2"), ("T_test", "50")))
    assert a.file_name.split("_")[-1] == b.file_name.split("_")[-1]
    assert Run("ppc", "paper", "KF-1", 2).file_name.startswith("ppc_paper_KF-1_seed2_defaults_")
    # a model name outside ASCII keeps its own file: rVAE-β is not the rVAE
    assert Run("ppc", "paper", "rVAE-β", 2).file_name.startswith("ppc_paper_rVAE-beta_seed2_")


def test_grid_union_of_blocks_and_bad_values(tmp_path, capsys):
    f = tmp_path / "g.yaml"
    f.write_text("experiment: ppc\nmodels: [KF-1]\nseeds: [0]\nset: {n_test: 4}\n"
                 "grid:\n  - {}\n  - {lti.mass: [2.5, 10]}\n  - {lti.mass: [10], T_test: [60]}\n")
    s = load_grid(f)
    assert s.preset == "quick" and s.settings() == [
        {"n_test": "4"}, {"n_test": "4", "lti.mass": "2.5"}, {"n_test": "4", "lti.mass": "10"},
        {"n_test": "4", "lti.mass": "10", "T_test": "60"}]
    f.write_text("experiment: ppc\ngrid: {lti.bogus: [1, 2]}\n")
    with pytest.raises(UsageError, match="valid keys"):
        load_grid(f).runs()
    for argv, err in ((["sweep", "--out", "x"], "name an EXPERIMENT or give --grid"),
                      (["sweep", "ppc", "--out", "x", "--set", "n_test=two"], "expects int"),
                      (["sweep", "ppc", "--models", "KF-9", "--out", "x"], "unknown model"),
                      (["sweep", "ppc", "--out", "x", "--no-wait"], "--no-wait needs"),
                      (["sweep", "balls", "--grid", str(f), "--out", "x"], "--grid says")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and err in capsys.readouterr().err


def test_committed_grids():
    """sweeps/*.yaml: valid, and what their names promise."""
    t1, t2 = load_grid(ROOT / "sweeps/table1.yaml"), load_grid(ROOT / "sweeps/table2.yaml")
    # the poster's rows: rVAE-β (a variant of ours) runs in the PPC experiment, not in Table 1
    table1 = tuple(m for m in ppc.MODELS if m != "rVAE-β")
    assert (t1.experiment, t1.preset, t1.models, t1.seeds) == ("ppc", "paper", table1,
                                                               (0, 1, 2, 3, 4))
    table2 = tuple(m for m in balls.MODELS if m != "rVAE-β")
    assert (t2.experiment, t2.preset, t2.models, t2.seeds) == ("balls", "paper", table2,
                                                               (0, 1, 2))
    assert len(t1.runs()) == 50 and len(t2.runs()) == 21
    dyn = load_grid(ROOT / "sweeps/dynamics.yaml")
    assert dyn.preset == "paper" and dyn.seeds == (0, 1, 2)
    assert set(dyn.models) == {"rEFH", "KF-1", "KF-2", "KF-true", "rVAE"}
    settings = dyn.settings()
    assert settings[0] == {} and all(len(s) == 1 for s in settings[1:])  # one at a time
    lti = ppc.PRESETS["paper"].lti
    for field in ("spring", "damping", "mass"):
        vals = [float(s[f"lti.{field}"]) for s in settings if f"lti.{field}" in s]
        default = getattr(lti, field)
        assert min(vals) <= default / 4 and max(vals) >= default * 4, field
    hid = load_grid(ROOT / "sweeps/hidden.yaml")
    assert hid.models == ("rEFH",) and hid.preset == "paper" and hid.seeds == (0, 1, 2)
    widths = [int(s["refh.n_hidden"]) for s in hid.settings()]
    assert min(widths) == 15 and max(widths) == 960
    pilot = load_grid(ROOT / "sweeps/hidden_pilot.yaml")
    assert pilot.seeds == (0,) and pilot.preset == "paper"
    # at least x1/2, x1 and x2 of the paper's schedule at every width (tlr.tuning's rule)
    paper_m0 = ",".join(f"{x:g}" for x in ppc.PRESETS["paper"].refh.optim.m0)
    for w in widths:
        m0s = {s["refh.optim.m0"] for s in pilot.settings() if s["refh.n_hidden"] == str(w)}
        assert {paper_m0, "1600,100,400,400,24", "400,25,100,100,6"} <= m0s, w
    m0s = {s["refh.optim.m0"] for s in pilot.settings()}
    dyn_pilot = load_grid(ROOT / "sweeps/dynamics_pilot.yaml")
    # the rule at some points of the dynamics grid: x1/2 and x2 beside the grid's own x1
    by_point: dict[tuple, set] = {}
    for s in dyn_pilot.settings():
        point = tuple(sorted((k, v) for k, v in s.items() if k != "refh.optim.m0"))
        by_point.setdefault(point, set()).add(s["refh.optim.m0"])
    assert set(by_point) <= {tuple(sorted(s.items())) for s in settings}
    assert all({"1600,100,400,400,24", "400,25,100,100,6"} <= m for m in by_point.values())
    tuned = load_grid(ROOT / "sweeps/dynamics_tuned.yaml")
    assert {tuple(sorted((k, v) for k, v in s.items() if k != "refh.optim.m0"))
            for s in tuned.settings()} <= set(by_point)  # stage 2 only where the rule ran
    restarts = load_grid(ROOT / "sweeps/rvae_beta_restarts.yaml")
    assert restarts.seeds == t1.seeds and restarts.preset == "paper"
    assert "rVAE-β" in restarts.models and restarts.settings() == [{"vae.restarts": "3"}]
    val40 = load_grid(ROOT / "sweeps/rvae_beta_restarts_val40.yaml")
    assert val40.settings() == [{"vae.restarts": "3", "n_val": "40"}]
    assert (val40.seeds, val40.preset) == (restarts.seeds, restarts.preset)
    uncertain = load_grid(ROOT / "sweeps/rvae_beta_uncertain.yaml")
    assert uncertain.settings() == [{"vae.beta_u_uncertain": "true"}]
    assert (uncertain.seeds, uncertain.preset) == (restarts.seeds, restarts.preset)
    constant = load_grid(ROOT / "sweeps/rvae_beta_constant.yaml")
    assert len(constant.settings()) == 4 and constant.preset == "quick"
    assert all(s["vae.beta_kl_warmup"] == "0" and s["vae.restarts"] == "4"
               for s in constant.settings())
    free_bits = load_grid(ROOT / "sweeps/rvae_free_bits.yaml")
    assert free_bits.settings() == [{"vae.beta_kl_weight": "1.0", "vae.beta_kl_warmup": "0",
                                     "vae.beta_free_bits": "1.0"}]
    assert (free_bits.seeds, free_bits.preset) == (restarts.seeds, restarts.preset)
    slow = load_grid(ROOT / "sweeps/rvae_free_bits_slow.yaml")
    assert slow.settings() == [{**free_bits.settings()[0], "vae.optim.decay": "1.01"}]
    fb_restarts = load_grid(ROOT / "sweeps/rvae_free_bits_restarts.yaml")
    assert fb_restarts.settings() == [{**free_bits.settings()[0], "vae.restarts": "3"}]
    assert (fb_restarts.seeds, fb_restarts.models) == (free_bits.seeds, free_bits.models)
    for g in (dyn, hid, pilot, dyn_pilot, tuned, restarts, val40, uncertain, constant, free_bits,
              slow, fb_restarts):
        g.runs()  # every override key and value is valid


def test_shipped_grids_by_name(tmp_path):
    """``--grid table1`` finds sweeps/table1.yaml (tlr/_grids when installed); a file wins."""
    assert grid_names() == ["dynamics", "dynamics_pilot", "dynamics_tuned", "hidden",
                            "hidden_pilot", "rvae_beta_constant", "rvae_beta_restarts",
                            "rvae_beta_restarts_val40", "rvae_beta_uncertain", "rvae_free_bits",
                            "rvae_free_bits_restarts", "rvae_free_bits_slow", "table1",
                            "table2"]
    assert grid_path("table1") == grid_path("table1.yaml") == ROOT / "sweeps/table1.yaml"
    assert load_grid("table2") == load_grid(ROOT / "sweeps/table2.yaml")
    mine = tmp_path / "table1.yaml"
    mine.write_text("experiment: balls\n")
    assert load_grid(mine).experiment == "balls"
    with pytest.raises(UsageError,
                       match=r"no grid file .tabel1.*shipped: dynamics, dynamics_pilot, dyn"):
        load_grid("tabel1")
    with pytest.raises(UsageError, match="no grid file"):
        load_grid(tmp_path / "missing.yaml")


# ------------------------------------------------------------------ summaries


def test_t_quantile_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in range(1, 120):
        assert t_quantile(df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-7), df


def _write(path: Path, seed: int, results: dict, preset="paper", overrides=None, failed=None):
    d = {"experiment": "ppc", "preset": preset, "seed": seed, "overrides": overrides or {},
         "results": {m: {"mse": v, "train_s": 0.0} for m, v in results.items()},
         "details": {}, "provenance": {}}
    if failed:
        d["failed"] = failed
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(d))


def test_summarize_against_hand_computation(tmp_path):
    # several models per file (like results/ppc), a second file repeating a seed, a failure,
    # another setting, a manifest and a non-run JSON
    _write(tmp_path / "s0.json", 0, {"KF-1": 1.0, "rEFH": 0.5})
    _write(tmp_path / "s1.json", 1, {"KF-1": 2.0}, failed={"rEFH": "diverged"})
    _write(tmp_path / "sub" / "s2.json", 2, {"KF-1": 4.0, "rEFH": 0.7})
    _write(tmp_path / "sub" / "s2_again.json", 2, {"KF-1": 4.0})
    _write(tmp_path / "h.json", 0, {"KF-1": 3.0}, overrides={"lti.mass": "10"})
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": []}))
    (tmp_path / "analysis.json").write_text(json.dumps({"rows": [1, 2]}))
    rows = summarize(tmp_path)["experiments"]["ppc"]
    assert [(r["setting"], r["model"]) for r in rows] == [
        ("defaults", "KF-1"), ("defaults", "rEFH"), ("lti.mass=10", "KF-1")]
    kf, refh, mass = rows
    x = [1.0, 2.0, 4.0]
    mean = 7 / 3
    sd = math.sqrt(((1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2) / 2)
    half = 4.302652729749464 * sd / math.sqrt(3)  # t_{0.975, 2}
    assert kf["seeds"] == [0, 1, 2] and kf["values"] == x and kf["n"] == 3
    assert kf["mean"] == pytest.approx(mean) and kf["sd"] == pytest.approx(sd)
    assert kf["ci95"] == pytest.approx([mean - half, mean + half])
    assert kf["failed"] == []
    assert refh["seeds"] == [0, 2] and refh["failed"] == [1]
    assert refh["ci95"] == pytest.approx([0.6 - 12.7062047 * math.sqrt(0.02) / math.sqrt(2),
                                          0.6 + 12.7062047 * math.sqrt(0.02) / math.sqrt(2)])
    assert mass["n"] == 1 and mass["mean"] == 3.0 and mass["sd"] is None
    assert mass["ci95"] is None and mass["overrides"] == {"lti.mass": "10"}
    # a seed found twice with different values warns and keeps the first (sorted paths)
    _write(tmp_path / "sub" / "s2_again.json", 2, {"KF-1": 9.0})
    with pytest.warns(UserWarning, match="seed 2: 9.0 in .* differs from 4.0"):
        assert summarize(tmp_path)["experiments"]["ppc"][0]["values"] == x


def test_summarize_saved_ppc_runs(capsys, tmp_path):
    """The saved results/ppc runs: several models per file, no manifest."""
    s = summarize(ROOT / "results/ppc")
    paper = {r["model"]: r for r in s["experiments"]["ppc"]
             if r["preset"] == "paper" and r["setting"] == "defaults"}
    assert set(load_grid("table1").models) <= set(paper) <= set(ppc.MODELS)
    # KF-1 is in two files of each seed (paper_seedS and paper_seedS_vae): counted once
    files = [json.loads(f.read_text()) for f in sorted((ROOT / "results/ppc").rglob("*.json"))]
    kf1 = {d["seed"]: d["results"]["KF-1"]["mse"] for d in reversed(files)
           if d.get("preset") == "paper" and not d.get("overrides")
           and "KF-1" in d.get("results", {})}
    assert {0, 1, 2} <= set(kf1)
    assert paper["KF-1"]["seeds"] == sorted(kf1)
    assert paper["KF-1"]["values"] == [kf1[k] for k in sorted(kf1)]
    assert paper["KF-1"]["mean"] == pytest.approx(sum(kf1.values()) / len(kf1))
    assert paper["rVAE-BPTT"]["n"] == 1 and paper["rVAE-BPTT"]["failed"] == [1, 2]
    js, md = tmp_path / "s.json", tmp_path / "s.md"
    assert main(["summarize", str(ROOT / "results/ppc"), "--json", str(js),
                 "--markdown", str(md)]) == 0
    printed = capsys.readouterr().out
    assert summary_rows(ROOT / "results/ppc", "ppc", preset="paper") == paper
    assert summary_rows(ROOT / "results/ppc", "balls") == {}
    refh = paper["rEFH"]
    assert f"| paper | defaults | rEFH | {','.join(map(str, refh['seeds']))} | {refh['n']} |" \
        in printed
    assert json.loads(js.read_text()) == json.loads(json.dumps(s))
    assert md.read_text() in printed


def test_summarize_disagreeing_seed_warns_unless_agree_is_off():
    """One seed in two files: a differing score warns (the data of a seed are fixed); a
    differing time does not when agree=False."""
    def run(mse, t):
        return {"experiment": "ppc", "preset": "quick", "seed": 0, "overrides": {},
                "results": {"KF-1": {"mse": mse, "train_s": t}}}
    with pytest.warns(UserWarning, match="differs"):
        summarize([run(1.0, 1.0), run(2.0, 1.0)])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = summarize([run(1.0, 1.0), run(1.0, 3.0)], "train_s", agree=False)
    assert s["experiments"]["ppc"][0]["values"] == [1.0]


def test_plot_summary(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    _write(tmp_path / "a.json", 0, {"KF-1": 1e-3, "rEFH": 5e-4})
    _write(tmp_path / "b.json", 1, {"KF-1": 2e-3, "rEFH": 6e-4})
    ax = plot_summary(summarize(tmp_path), "ppc")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["rEFH", "KF-1"]
    assert ax.get_xscale() == "log"
    matplotlib.pyplot.close(ax.figure)
