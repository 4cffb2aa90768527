"""Typed results (util/results.py): the names on disk stay what earlier versions wrote and read back as the same
records; set-level (FID/KID-like, with a spread) and masked results fit the same scheme; --val_metric takes the
names it took; validation keeps best.pth by the direction its metric declares; models declare their cycle error;
result folders and training histories written by the previous version still make their pages."""
import json
import math
import os
from types import SimpleNamespace

import pytest

from evaluation import summary_lines
from evaluation.validation import Validation, format_metrics
from models import find_model_using_name
from util.errors import UserError
from util.pages import runs
from util.results import (MAE, METRICS, PSNR, SSIM, Metric, Result, Results, check_val_metric, parse_key, summarize,
                          val_metric_names)

# metrics.json as the previous version wrote it for a paired 2D run (key order included)
OLD_MEAN = {"MAE_fake_B": 0.0664, "PSNR_fake_B": 21.51, "SSIM_fake_B": 0.4954, "baseline_MAE_fake_B": 0.2038,
            "baseline_PSNR_fake_B": 13.10, "baseline_SSIM_fake_B": 0.5604, "MAE_fake_A": 0.0505, "PSNR_fake_A": 23.45,
            "SSIM_fake_A": 0.5594, "baseline_MAE_fake_A": 0.2038, "baseline_PSNR_fake_A": 13.10,
            "baseline_SSIM_fake_A": 0.5604}
OLD_ITEMS = [{"name": "cat_0", **{k: v + 0.01 for k, v in OLD_MEAN.items()}},
             {"name": "cat_1", **{k: v - 0.01 for k, v in OLD_MEAN.items()}}]


def test_old_names_read_back_as_records_and_write_unchanged():
    results = Results.from_flat(OLD_MEAN)
    assert [r.key for r in results] == ["MAE_fake_B", "PSNR_fake_B", "SSIM_fake_B", "MAE_fake_A", "PSNR_fake_A",
                                        "SSIM_fake_A"]
    psnr = results.find(PSNR, "fake_B")
    assert (psnr.metric, psnr.output, psnr.value, psnr.baseline, psnr.cycle) == (PSNR, "fake_B", 21.51, 13.10, False)
    assert psnr.delta == pytest.approx(8.41) and results.outputs == ["fake_B", "fake_A"]
    assert list(results.flat().items()) == list(OLD_MEAN.items())  # the same names, values and order
    cycles = Results.from_flat({"name": "x", "cycle_MAE_A": 0.03, "cycle_MAE_B": 0.05, "note": "text"})
    assert [(r.metric, r.output, r.cycle, r.path()) for r in cycles] == [(MAE, "A", True, "A → B → A"),
                                                                        (MAE, "B", True, "B → A → B")]
    assert cycles.flat() == {"cycle_MAE_A": 0.03, "cycle_MAE_B": 0.05} and not cycles.outputs
    # what is no result is skipped: an unknown metric, a baseline without its value, a value that is no number
    assert not Results.from_flat({"LPIPS_fake_B": 3.0, "baseline_PSNR_fake_B": 1.0, "PSNR_fake_B": "n/a",
                                  "PSNR_fake_A": True})


def test_set_level_and_masked_results_fit_the_same_names(monkeypatch):
    fid = Metric("FID", False, decimals=2, per_item=False)
    monkeypatch.setitem(METRICS, "FID", fid)  # how the FID/KID step registers a set-level metric
    masked = Result(PSNR, "fake_B", 30.0, baseline=20.0, region="foreground", data_range=2000.0)
    kid_like = Result(fid, "fake_B", 12.5, std=0.7)
    results = Results([Result(PSNR, "fake_B", 25.0, 18.0), masked, kid_like])
    flat = results.flat()
    assert flat == {"PSNR_fake_B": 25.0, "baseline_PSNR_fake_B": 18.0, "PSNR_foreground_fake_B": 30.0,
                    "baseline_PSNR_foreground_fake_B": 20.0, "FID_fake_B": 12.5, "FID_fake_B_std": 0.7}
    back = Results.from_flat(flat)  # on disk grouped by what was measured: fake_B, then fake_B's foreground
    assert [(r.key, r.region, r.std, r.baseline) for r in back] == [
        ("PSNR_fake_B", None, None, 18.0), ("FID_fake_B", None, 0.7, None),
        ("PSNR_foreground_fake_B", "foreground", None, 20.0)]
    assert back.translations.outputs == ["fake_B"]
    assert [r.key for r in back.translations] == ["PSNR_fake_B", "FID_fake_B"]
    # the typed records keep what a flat name cannot (the data range); files without them read from the names
    assert Results.from_json(results.to_json()) == results
    assert Results.from_json(None, flat) == back
    assert results.to_json()[1]["data_range"] == 2000.0 and results.to_json()[0]["higher_is_better"] is True
    assert "FID_fake_B: 12.5000 (± 0.7000)" in format_metrics(results)
    assert parse_key("FID_fake_B_std")["std"] and parse_key("name") is None
    assert "FID_fake_B" in val_metric_names()  # --val_metric takes a registered metric by its name


def test_summarize_means_values_and_baselines_in_measured_order():
    rows = {"a": Results([Result(MAE, "fake_B", 0.2, 0.4), Result(PSNR, "fake_B", 20.0, 10.0)]),
            "b": Results([Result(MAE, "fake_B", 0.4), Result(PSNR, "fake_B", math.inf, 12.0),
                          Result(MAE, "A", 0.1, cycle=True)])}
    mean = summarize(rows)
    assert [r.key for r in mean] == ["MAE_fake_B", "PSNR_fake_B", "cycle_MAE_A"]
    assert mean.get("MAE_fake_B").value == pytest.approx(0.3) and mean.get("MAE_fake_B").baseline == 0.4
    assert mean.get("PSNR_fake_B").value == math.inf and mean.get("PSNR_fake_B").baseline == 11.0
    assert summary_lines(Results.from_flat(OLD_MEAN))[0] == \
        "fake_B: PSNR 21.51 dB (copy-the-input baseline 13.10 dB), SSIM 0.4954, MAE 0.0664"
    assert summary_lines(mean)[-1] == "cycle error A -> B -> A: MAE 0.1000 (no true targets: unpaired data)"
    assert format_metrics(Results.from_flat(OLD_MEAN)).startswith(
        "MAE_fake_B: 0.0664 (copy 0.2038) PSNR_fake_B: 21.5100 (copy 13.1000) SSIM_fake_B: 0.4954")


def test_val_metric_takes_the_names_it_took():
    old = [f"{m}_fake_{d}" for m in ("mae", "psnr", "ssim") for d in "ab"] + ["cycle_mae_a", "cycle_mae_b", "auto"]
    for name in old + [n.upper() for n in old] + ["PSNR_fake_B", "cycle_MAE_A"]:
        assert check_val_metric(name) == name
    sets = {f"{m}_fake_{d}" for m in ("fid", "kid") for d in "ab"}  # FID and KID (evaluation/fid.py)
    regions = {f"{m}_foreground_fake_{d}" for m in ("mae", "psnr", "ssim") for d in "ab"}  # volumes' foreground
    assert {n.lower() for n in val_metric_names()} == set(old) - {"auto"} | sets | regions
    for bad in ("psnr", "psnr_fake_c", "cycle_psnr_a", "cycle_fid_a", "FID_foreground_fake_B"):
        with pytest.raises(UserError, match="use auto, MAE_fake_B, PSNR_fake_B, SSIM_fake_B, FID_fake_B, KID_fake_B "
                                            "\\(or _fake_A\\), PSNR_foreground_fake_B \\(volumes; MAE_ and SSIM_ "
                                            "too\\), or cycle_MAE_A / cycle_MAE_B for unpaired data"):
            check_val_metric(bad)


def _validation(val_metric):
    v = Validation.__new__(Validation)  # the best-keeping part alone: no model or data
    v.opt, v.metric, v.best = SimpleNamespace(val_metric=val_metric), None, None
    return v


def test_validation_keeps_best_by_the_metrics_direction_and_reads_old_checkpoints():
    v = _validation("auto")
    assert v.improved(Results.from_flat(OLD_MEAN)) and v.state() == {"metric": "PSNR_fake_B", "best": 21.51}
    assert not v.improved(Results.from_flat({**OLD_MEAN, "PSNR_fake_B": 21.0}))
    v = _validation("auto")  # unpaired data: the cycle error, lower is better
    v.load({"metric": "cycle_MAE_A", "best": 0.05})  # validation state of a checkpoint of the previous version
    assert v.improved(Results.from_flat({"cycle_MAE_A": 0.04, "cycle_MAE_B": 0.09})) and v.best == 0.04
    assert not v.improved(Results.from_flat({"cycle_MAE_A": 0.045, "cycle_MAE_B": 0.01}))
    v = _validation("mae_fake_a")
    assert v.improved(Results.from_flat(OLD_MEAN)) and v.metric == "MAE_fake_A"
    with pytest.raises(UserError, match="validation measures cycle_MAE_A, cycle_MAE_B"):
        _validation("ssim_fake_b").improved(Results.from_flat({"cycle_MAE_A": 0.04, "cycle_MAE_B": 0.09}))


def test_models_declare_their_cycle_error():
    has = {name: find_model_using_name(name).has_cycle_error for name in (
        "cycle_gan", "unpaired_revgan", "cycle_gan3d", "unpaired_revgan3d", "pix2pix", "paired_revgan",
        "pix2pix3d", "paired_revgan3d", "test")}
    assert [n for n, v in has.items() if v] == ["cycle_gan", "unpaired_revgan", "cycle_gan3d", "unpaired_revgan3d"]


def _old_result_folder(root, name, mean, items):
    """A result folder as the previous version wrote it: summary.json and metrics.json without typed records."""
    folder = root / name / "test_latest"
    os.makedirs(folder / "images" / "fake_B")
    for item in items:
        (folder / "images" / "fake_B" / f"{item['name']}.png").write_bytes(b"")
    json.dump({"mean": mean, "items": items}, open(folder / "metrics.json", "w"))
    json.dump({"format": 1, "name": name, "phase": "test", "epoch": "latest", "model": "paired_revgan",
               "direction": "AtoB", "dims": 2, "date": "2024-01-01 00:00:00", "items": len(items),
               "outputs": {"fake_B": {"source": "A", "target": "B"}, "fake_A": {"source": "B", "target": "A"}},
               "mean": mean, "architecture": None, "page": "index.html"}, open(folder / "summary.json", "w"))
    return folder


def test_result_folders_of_the_previous_version_make_their_pages(tmp_path):
    old = _old_result_folder(tmp_path, "old", OLD_MEAN, OLD_ITEMS)
    result = runs.read_result(str(old))
    assert result["results"] == Results.from_flat(OLD_MEAN)
    assert result["rows"]["cat_0"].value(SSIM, "fake_A") == pytest.approx(0.5694)
    os.remove(old / "summary.json")  # folders older still: metrics.json alone
    assert runs.read_result(str(old))["results"] == Results.from_flat(OLD_MEAN)
    other = _old_result_folder(tmp_path, "other", {k: v * 1.1 for k, v in OLD_MEAN.items()}, OLD_ITEMS)
    page = open(runs.write_comparison([str(old), str(other)])).read()
    ssim = OLD_ITEMS[1]["SSIM_fake_B"]  # of cat_1, in both runs, and no difference between them
    assert page.count(f'data-v="{ssim!r}"') == 2 and 'data-v="0.0"' in page
    index = open(runs.write_runs_index(str(tmp_path))).read()
    assert f'data-v="{OLD_MEAN["PSNR_fake_B"]!r}"' in index and "(+8.41)" in index  # PSNR and its gain over copy


def _strict(text):
    """JSON as a strict parser (JavaScript's JSON.parse, jq) reads it: no bare Infinity or NaN."""
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def test_an_infinite_psnr_is_written_as_strict_json_and_read_back(tmp_path):
    """An output equal to its target has an infinite PSNR: metrics.json and summary.json stay strict JSON (the value
    as the string "Infinity") and the runs index reads it back as infinite."""
    from evaluation import metrics
    folder = tmp_path / "run" / "test_latest"
    os.makedirs(folder / "images" / "fake_B")
    rows = {}
    for name, psnr in (("same", math.inf), ("other", 20.0)):
        (folder / "images" / "fake_B" / f"{name}.png").write_bytes(b"")
        rows[name] = Results([Result(PSNR, "fake_B", psnr, 10.0), Result(MAE, "fake_B", 0.0 if psnr == math.inf else 0.1)])
    mean = metrics.write(rows, str(folder))
    assert mean.value(PSNR, "fake_B") == math.inf
    opt = SimpleNamespace(name="run", phase="test", epoch="latest", model="pix2pix", direction="AtoB")
    runs.write_summary(str(folder), opt, {}, 2, {"fake_B": ("A", "B")}, mean)
    written = _strict((folder / "metrics.json").read_text())
    assert written["items"][0]["PSNR_fake_B"] == "Infinity" and written["mean"]["PSNR_fake_B"] == "Infinity"
    assert float(written["items"][0]["PSNR_fake_B"]) == math.inf and written["items"][1]["PSNR_fake_B"] == 20.0
    assert _strict((folder / "summary.json").read_text())["mean"]["PSNR_fake_B"] == "Infinity"
    result = runs.read_result(str(folder))
    assert result["results"].value(PSNR, "fake_B") == math.inf
    assert result["rows"]["same"].value(PSNR, "fake_B") == math.inf and result["rows"]["other"].value(
        PSNR, "fake_B") == 20.0
    assert 'data-v="Infinity"' in open(runs.write_runs_index(str(tmp_path))).read()


def test_visdom_and_the_training_page_read_validation_records(tmp_path):
    """plot_validation writes the names of earlier versions to loss_history.jsonl; visdom gets PSNR beside its
    baseline per translation (or the cycle errors), from new and earlier points alike."""
    from util.visualizer import Visualizer
    opt = SimpleNamespace(checkpoints_dir=str(tmp_path), name="v", display_id=0, no_html=False, model="paired_revgan")
    vis = Visualizer(opt)
    sent = []
    vis.vis = SimpleNamespace(line=lambda **kw: sent.append(kw))
    vis.history.append({"x": 1.0, "val": dict(OLD_MEAN)})  # a point of the previous version
    later = Results.from_flat({**OLD_MEAN, "PSNR_fake_B": 22.5})
    vis.plot_validation(2, later, "validation (epoch 2): ...")
    saved = [json.loads(line) for line in open(tmp_path / "v" / "loss_history.jsonl")]
    assert saved == [{"x": 2.0, "val": later.flat()}] and list(saved[0]["val"]) == list(OLD_MEAN)
    (call,) = sent
    assert call["opts"]["legend"] == ["PSNR_fake_B", "baseline_PSNR_fake_B", "PSNR_fake_A", "baseline_PSNR_fake_A"]
    assert call["Y"].tolist() == [[21.51, 13.10, 23.45, 13.10], [22.5, 13.10, 23.45, 13.10]]
    assert call["X"][:, 0].tolist() == [1.0, 2.0]
    page = (tmp_path / "v" / "web" / "index.html").read_text()
    assert 'id="validation-summary"' in page and ">22.50<" in page and ">+9.40<" in page
