"""--log tensorboard / wandb (and upstream's --use_wandb): the values logged are read back (TensorBoard's event
files; W&B's offline run file, WANDB_MODE=offline, nothing sent anywhere) and equal the training's own curves
(loss_history.jsonl); a resumed run continues its curves at the checkpoint's total_iters; a missing package costs one
warning line."""
import glob
import json
import struct
import sys

import pytest

import train as train_script
from tests.conftest import tiny_flags


def history(folder):
    return [json.loads(line) for line in open(folder / "loss_history.jsonl")]


def tensorboard_scalars(folder):
    """{tag: {step: value}} of every event file in ``folder`` (as TensorBoard shows them: purged points dropped)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}, acc.Tags()["images"]


def wandb_history(path):
    """The history rows of a W&B run file (its records: a 7-byte header, then LevelDB-log blocks of 32 KiB holding
    protobuf Records)."""
    from wandb.proto import wandb_internal_pb2 as pb
    data, rows, pos, pending = open(path, "rb").read(), [], 7, b""
    block = 32768
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            continue
        pending += chunk
        if kind in (1, 4):  # a full record, or the last part of one
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            if record.HasField("history"):
                rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                             for item in record.history.item})
    return rows


@pytest.fixture()
def offline_wandb(monkeypatch, tmp_path):
    pytest.importorskip("wandb")
    pytest.importorskip("tensorboard")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))


def test_tensorboard_and_wandb_hold_the_logged_values_and_resume(demo_root, tmp_path, offline_wandb):
    flags = tiny_flags(demo_root, tmp_path, "logged", "unpaired_revgan",
                       ["--n_blocks", "1", "--val_freq", "1", "--val_fraction", "0.3", "--max_dataset_size", "4",
                        "--display_freq", "2", "--log", "tensorboard", "--use_wandb", "--n_epochs_decay", "0"])
    train_script.main(flags)
    folder = tmp_path / "ckpt" / "logged"
    points = history(folder)
    losses = [p for p in points if "losses" in p]
    scalars, images = tensorboard_scalars(folder)
    assert {"images/real_A", "images/fake_B", "images/rec_A"} <= set(images)
    step_of = {}
    for p in losses:  # total_iters is the x axis; the history's x is in epochs (4 images an epoch here... minus val)
        step = min(scalars["epoch"], key=lambda s: abs(scalars["epoch"][s] - p["x"]))
        step_of[p["x"]] = step
        assert scalars["loss/G_A"][step] == pytest.approx(p["losses"]["G_A"], rel=1e-6)
        assert scalars["learning_rate"][step] == pytest.approx(p["lr"], rel=1e-6)
        assert scalars["peak_memory_MiB"][step] == pytest.approx(p["memory_mib"], rel=1e-6)
        assert scalars["recon_err"][step] == pytest.approx(p["recon"], rel=1e-5, abs=1e-12)
    val = [p for p in points if "val" in p][-1]["val"]
    assert scalars["validation/PSNR_fake_B"][max(scalars["validation/PSNR_fake_B"])] == pytest.approx(
        val["PSNR_fake_B"], rel=1e-6)
    runs = glob.glob(str(folder / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert len(runs) == 1
    rows = wandb_history(runs[0])
    logged = {r["total_iters"]: r["loss/G_A"] for r in rows if "loss/G_A" in r}
    assert sorted(logged.values()) == pytest.approx(sorted(p["losses"]["G_A"] for p in losses), rel=1e-6)
    assert any("validation/PSNR_fake_B" in r for r in rows) and any("images/fake_B/_type" in r for r in rows)
    first_end = max(logged)

    train_script.main(flags + ["--continue_train", "--n_epochs", "2"])  # one more epoch
    scalars, _ = tensorboard_scalars(folder)
    assert max(scalars["loss/G_A"]) > first_end  # the curve goes on from the checkpoint's step
    assert sorted(scalars["loss/G_A"]) == sorted(set(scalars["loss/G_A"]))
    runs = glob.glob(str(folder / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert len(runs) == 2 and len({r.rsplit("run-", 1)[1] for r in runs}) == 1  # the same W&B run, resumed
    resumed = [r["total_iters"] for path in runs for r in wandb_history(path) if "loss/G_A" in r]
    assert max(resumed) > first_end


def test_a_missing_logging_package_costs_one_warning(demo_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    monkeypatch.setitem(sys.modules, "wandb", None)
    train_script.main(tiny_flags(demo_root, tmp_path, "nolog", "pix2pix", ["--netG", "unet_128", "--load_size",
                                                                            "128", "--crop_size", "128",
                                                                            "--max_dataset_size", "1",
                                                                            "--n_epochs_decay", "0", "--log",
                                                                            "tensorboard", "wandb"]))
    err = capsys.readouterr().err.splitlines()
    assert len([line for line in err if line.startswith("warning: tensorboard:")]) == 1
    assert len([line for line in err if line.startswith("warning: wandb:")]) == 1
    assert any("requirements-extras.txt" in line for line in err)
    assert (tmp_path / "ckpt" / "nolog" / "latest.pth").exists()
