"""3D: volume dataset, every 3D model end to end on tiny real volumes, sliding-window inference, intensity mapping,
bad volume input."""
import json
import os

import nibabel as nib
import numpy as np
import pytest
import torch

import test as test_script
import train as train_script
from tests.conftest import NIB_DATA, _save, folder_hashes, vol_flags
from tests.test_bad_input import fails
from util.volume import from_unit, intensity_range, sliding_window, target_of, to_unit, volumes_by_name

MODELS3D = ["paired_revgan3d", "unpaired_revgan3d", "pix2pix3d", "cycle_gan3d"]


@pytest.mark.parametrize("model", MODELS3D)
def test_each_3d_model_trains_resumes_and_tests_whole_volumes(vol_root, tmp_path, model):
    flags = vol_flags(vol_root, tmp_path, model, model, ["--intensity_A", "percentile:1,99", "--intensity_B", "minmax"]
                      + (["--two_way"] if model == "paired_revgan3d" else []))  # both directions, B -> A tested
    train_script.main(flags)
    state = torch.load(tmp_path / "ckpt" / model / "latest.pth", weights_only=True)
    assert state["architecture"]["dims"] == 3 and state["counters"]["epoch"] == 3
    lo_b, hi_b = state["extra"]["intensity"]["B"]
    ref = nib.load(os.path.join(vol_root, "trainB", "s0.nii")).get_fdata()
    assert (lo_b, hi_b) == pytest.approx((ref.min(), ref.max()))  # minmax over the training set
    train_script.main(flags + ["--continue_train", "--n_epochs", "2"])
    assert torch.load(tmp_path / "ckpt" / model / "latest.pth", weights_only=True)["counters"]["epoch"] == 4

    out = tmp_path / "res"
    test_script.main(["--dataroot", vol_root, "--name", model, "--model", model, "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(out), "--gpu_ids", "-1", "--overlap", "0.5"])
    res = out / model / "test_latest"
    src = nib.load(os.path.join(vol_root, "testA", "t0.nii.gz"))
    fake = nib.load(str(res / "volumes" / "fake_B" / "t0.nii.gz"))
    assert fake.shape == src.shape == (21, 26, 19)
    assert np.allclose(fake.affine, src.affine) and fake.header.get_zooms() == src.header.get_zooms()
    data = fake.get_fdata()
    assert np.isfinite(data).all() and lo_b - 1e-3 <= data.min() and data.max() <= hi_b + 1e-3  # B's units
    assert np.load(res / "volumes" / "fake_B" / "t1.npy").shape == (21, 26, 19)
    metrics = json.load(open(res / "metrics.json"))
    assert {"PSNR_fake_B", "SSIM_fake_B", "MAE_fake_B", "baseline_PSNR_fake_B"} <= set(metrics["mean"])
    assert len(metrics["items"]) == 2
    both = model != "pix2pix3d"
    assert (res / "volumes" / "fake_A" / "t0.nii.gz").exists() == both
    page = open(res / "index.html").read()
    assert "images/fake_B/t0.png" in page and "metrics-mean" in page
    if model == "paired_revgan3d":  # one direction of a 3D checkpoint with --model test: B -> A, the inverse
        common = ["--dataroot", vol_root, "--name", model, "--checkpoints_dir", str(tmp_path / "ckpt"), "--gpu_ids",
                  "-1", "--eval"]  # --eval: dropout off, so both runs compute the same function
        test_script.main(common + ["--model", "test", "--direction", "BtoA", "--results_dir", str(tmp_path / "one")])
        test_script.main(common + ["--model", model, "--results_dir", str(tmp_path / "both")])
        one = tmp_path / "one" / model / "test_latest_BtoA_only"
        inv = nib.load(str(one / "volumes" / "fake_A" / "t0.nii.gz"))
        assert inv.shape == src.shape and np.allclose(inv.affine, src.affine)
        same = nib.load(str(tmp_path / "both" / model / "test_latest" / "volumes" / "fake_A" / "t0.nii.gz"))
        np.testing.assert_allclose(inv.get_fdata(), same.get_fdata(), rtol=1e-5, atol=1e-2)
        assert "PSNR_fake_A" in json.load(open(one / "metrics.json"))["mean"]
        # --dataroot the folder of the volumes themselves, as 2D --model test takes a folder of images
        test_script.main(common + ["--model", "test", "--direction", "BtoA", "--results_dir", str(tmp_path / "own"),
                                   "--dataroot", os.path.join(vol_root, "testB")])
        own = nib.load(str(tmp_path / "own" / model / "test_latest_BtoA_only" / "volumes" / "fake_A" / "t0.nii.gz"))
        np.testing.assert_array_equal(own.get_fdata(), inv.get_fdata())


@pytest.mark.parametrize("shape,patch,overlap", [((1, 21, 26, 19), (16, 16, 16), 0.5),
                                                 ((2, 9, 40, 17), (8, 16, 16), 0.25),
                                                 ((1, 10, 12, 7), (16, 16, 8), 0.0)])  # smaller than a patch
def test_sliding_window_of_identity_reproduces_input(shape, patch, overlap):
    x = torch.randn(shape)
    calls = []

    def identity(batch):
        calls.append(tuple(batch.shape))
        assert tuple(batch.shape[2:]) == patch
        return batch.clone()
    y = sliding_window(identity, x, patch, overlap, batch_size=3)
    assert y.shape == x.shape
    assert float((y - x).norm() / x.norm()) <= 1e-6
    assert all(c[0] <= 3 for c in calls)


def test_sliding_window_blends_smoothly():
    """A network that adds a per-patch constant: where patches overlap, the output is a smooth weighted mean."""
    x = torch.zeros(1, 8, 8, 40)
    count = iter(range(100))

    def shifted(batch):
        return torch.stack([b + next(count) for b in batch])
    y = sliding_window(shifted, x, (8, 8, 16), 0.5)[0, 4, 4]
    assert float(y.diff().abs().max()) < 0.5  # no jumps at patch borders (values step by 1 between patches)


def test_intensity_mapping_round_trips_inside_the_window():
    rng = np.random.default_rng(0)
    hu = rng.uniform(-2000, 2000, (10, 10, 10)).astype(np.float32)
    lo, hi = -1150.0, 350.0
    unit = to_unit(hu, lo, hi)
    assert unit.min() >= -1 and unit.max() <= 1
    back = from_unit(unit.astype(np.float32), lo, hi)
    inside = (hu >= lo) & (hu <= hi)
    assert np.allclose(back[inside], hu[inside], rtol=0, atol=(hi - lo) * 2e-7 + 1e-4)
    assert np.allclose(back[~inside], np.clip(hu[~inside], lo, hi), atol=1e-3)


def test_percentile_windows_say_what_they_clip_far_away():
    """CT-like data: soft tissue (-1024 ... 300 HU) and a few voxels of bone at 1800. The default percentile window
    ends near 300, so the bone is clipped: said; a window or minmax, or values clipped close to the window, not."""
    rng = np.random.default_rng(0)
    ct = rng.uniform(-1024, 300, (20, 20, 20))
    ct[:2, :2, :2] = 1800.0
    said = []
    lo, hi = intensity_range("percentile:0.5,99.5", "--intensity_B", [ct], say=said.append)
    assert hi < 301 and len(said) == 1, said
    assert said[0].startswith(f"note: --intensity_B percentile:0.5,99.5 is [{lo:.6g}, {hi:.6g}] on the training "
                              f"volumes; 0.5% of the voxels above {hi:.6g} (up to 1800) are clipped to it"), said
    assert "below" not in said[0] and "give --intensity_B window:LO,HI covering them, or minmax" in said[0]
    for spec in ("minmax", "window:-1024,300"):
        intensity_range(spec, "--intensity_B", [ct], say=said.append)
    intensity_range("percentile:0.5,99.5", "--intensity_B", [ct[2:]], say=said.append)  # no bone: nothing far
    assert len(said) == 1, said


def test_a_volumes_target_is_the_file_of_its_own_name_first(tmp_path):
    for f in ("case3.nii", "case3.nii.gz", "other.npy"):
        (tmp_path / f).write_bytes(b"")
    targets = volumes_by_name(str(tmp_path))
    found = {name: target_of(targets, os.path.join("testA", name))
             for name in ("case3.nii", "case3.nii.gz", "case3.npy", "other.nii.gz", "none.nii")}
    assert found == {"case3.nii": str(tmp_path / "case3.nii"), "case3.nii.gz": str(tmp_path / "case3.nii.gz"),
                     "case3.npy": str(tmp_path / "case3.nii"), "other.nii.gz": str(tmp_path / "other.npy"),
                     "none.nii": None}


def test_pairs_of_other_orientations_are_said(vol_root, tmp_path, capsys):
    """A pair whose headers say its files' x axes run opposite ways (RAS, LAS: mixed converters) is matched voxel by
    voxel, so it may be mirrored: said before training."""
    import shutil
    root = tmp_path / "data"
    for side in "AB":
        shutil.copytree(os.path.join(vol_root, "train" + side), root / ("train" + side))
    img = nib.load(str(root / "trainB" / "s1.nii"))
    flipped = img.affine.copy()
    flipped[0, :] *= -1  # the same array, its x axis now running right to left
    data = np.array(img.dataobj)  # read before the file is written over (.nii is memory-mapped)
    nib.save(nib.Nifti1Image(data, flipped), str(root / "trainB" / "s1.nii"))
    train_script.main(vol_flags(str(root), tmp_path, "orient", "paired_revgan3d", ["--n_epochs_decay", "0"]))
    out = capsys.readouterr().out
    axes = "".join(nib.aff2axcodes(img.affine)), "".join(nib.aff2axcodes(flipped))
    pair_a, pair_b = root / "trainA" / "s1.nii.gz", root / "trainB" / "s1.nii"
    assert f"note: 1 of 3 train pairs have other orientations in their headers (e.g. {pair_a}: {axes[0]}, " \
           f"{pair_b}: {axes[1]}); pairs are matched voxel by voxel" in out, out
    train_script.main(vol_flags(str(vol_root), tmp_path, "same", "paired_revgan3d", ["--n_epochs_decay", "0"]))
    assert "other orientations" not in capsys.readouterr().out


def test_bad_volume_inputs(vol_root, tmp_path, capsys):
    import shutil
    flags = vol_flags(vol_root, tmp_path, "keep", "paired_revgan3d", ["--n_epochs_decay", "0"])
    train_script.main(flags)
    hashes = folder_hashes(tmp_path / "ckpt")

    def variant(name, edit):
        root = tmp_path / name
        shutil.copytree(vol_root, root)
        edit(root)
        return [str(root) if f == vol_root else f for f in flags]

    four_d = nib.load(os.path.join(NIB_DATA, "example4d.nii.gz"))
    fails(capsys, variant("fourd", lambda r: nib.save(four_d, str(r / "trainA" / "s0.nii.gz"))),
          "expected a 3D volume")
    fails(capsys, variant("shape", lambda r: _save(np.zeros((5, 6, 7)), np.eye(4), str(r / "trainB" / "s0.nii"))),
          "differ in shape")

    def nan(r):
        v = nib.load(str(r / "trainA" / "s1.nii.gz")).get_fdata()
        v[3, 3, 3] = np.nan
        _save(v, np.eye(4), str(r / "trainA" / "s1.nii.gz"))
    fails(capsys, variant("nan", nan), "NaN")
    fails(capsys, variant("corrupt", lambda r: open(r / "trainA" / "s2.nii.gz", "wb").write(b"not a volume")),
          "cannot read volume")
    fails(capsys, variant("names", lambda r: os.rename(r / "trainB" / "s2.nii", r / "trainB" / "other.nii")),
          "same names")
    fails(capsys, flags + ["--patch_size", "48", "--no_pad"], "--no_pad")
    fails(capsys, flags + ["--intensity_A", "window:5"], "--intensity_A")
    fails(capsys, flags + ["--intensity_A", "window:10,5"], "--intensity_A window:10,5: LO must be below HI "
                                                            "(window:5,10?)")
    fails(capsys, flags + ["--patch_size", "16", "16"], "--patch_size")
    fails(capsys, flags + ["--model", "paired_revgan", "--dataset_mode", "volume", "--input_nc", "1", "--output_nc", "1"],
          "3D volumes")
    assert folder_hashes(tmp_path / "ckpt") == hashes


def test_test_volumes_of_one_name_and_targets_of_another_shape(vol_root, tmp_path, capsys):
    """test.py on volumes: two inputs of one name (v.nii and v.nii.gz) each keep their output, and a target whose
    shape differs from its input's is said, not silently left out of the metrics. The intensity windows are fixed
    when training starts: a typed --intensity_* on resuming or testing is said to be ignored, and the options files
    record the windows in use."""
    import shutil
    flags = vol_flags(vol_root, tmp_path, "p", "paired_revgan3d", ["--n_epochs_decay", "0"])
    train_script.main(flags)
    capsys.readouterr()
    train_script.main(flags + ["--continue_train", "--n_epochs", "2", "--intensity_A", "window:0,1000"])
    assert "note: --intensity_A window:0,1000 ignored: the checkpoint was trained with percentile:0.5,99.5" in \
        capsys.readouterr().out
    assert "window:0,1000" not in (tmp_path / "ckpt" / "p" / "train_opt.txt").read_text()
    old = tmp_path / "ckpt" / "old"  # a checkpoint of a version that wrote no "schedule": its options decide
    shutil.copytree(tmp_path / "ckpt" / "p", old)
    state = torch.load(old / "latest.pth", weights_only=True)
    del state["schedule"]
    torch.save(state, old / "latest.pth")
    train_script.main(flags + ["--name", "old", "--continue_train", "--n_epochs", "3", "--intensity_A",
                               "window:0,1000"])
    printed = capsys.readouterr().out
    assert "does not record its schedule" in printed and "--intensity_A window:0,1000 ignored" in printed, printed
    src = nib.load(os.path.join(vol_root, "testA", "t0.nii.gz"))
    same = tmp_path / "same"
    same.mkdir()
    _save(src.get_fdata(), src.affine, str(same / "v.nii"))
    _save(src.get_fdata()[::-1], src.affine, str(same / "v.nii.gz"))
    common = ["--name", "p", "--checkpoints_dir", str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"),
              "--gpu_ids", "-1", "--eval"]
    capsys.readouterr()
    test_script.main(common + ["--model", "test", "--dataroot", str(same)])
    out = tmp_path / "res" / "p" / "test_latest_AtoB_only" / "volumes" / "fake_B"
    assert sorted(os.listdir(out)) == ["v.nii.gz", "v_nii_gz.nii.gz"]
    first, second = (nib.load(str(out / f)).get_fdata() for f in ("v.nii.gz", "v_nii_gz.nii.gz"))
    assert not np.allclose(first, second)  # two inputs, two outputs (the second one mirrored)
    assert "an earlier test input is named v too; its outputs are named v_nii_gz" in capsys.readouterr().out
    # a folder of the other kind of data, or one file, given as --dataroot: said what it holds
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    (pngs / "x.png").write_bytes(b"")
    with pytest.raises(SystemExit):
        test_script.main(common + ["--model", "test", "--dataroot", str(pngs)])
    assert "holds images, but this is a 3D model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        test_script.main(common + ["--model", "test", "--dataroot", str(same / "v.nii")])
    assert "v.nii is a file, not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a window that cannot be: said before the baselines are fitted
        test_script.main(common + ["--model", "paired_revgan3d", "--dataroot", vol_root, "--patch_size", "16", "16"])
    printed = capsys.readouterr()
    assert "--patch_size 16 16: give one size or three" in printed.err and "baseline of" not in printed.out

    other = tmp_path / "other"
    shutil.copytree(vol_root, other)
    _save(np.zeros((21, 26, 18)), src.affine, str(other / "testB" / "t0.nii.gz"))  # t0's target, a slice short
    test_script.main(common + ["--model", "paired_revgan3d", "--dataroot", str(other), "--intensity_B", "minmax"])
    printed = capsys.readouterr().out
    assert "note: --intensity_B minmax ignored" in printed
    assert "minmax" not in (tmp_path / "res" / "p" / "test_latest" / "test_opt.txt").read_text()
    assert "(21x26x18) is not of the shape of" in printed and "not its target" in printed, printed
    rows = json.load(open(tmp_path / "res" / "p" / "test_latest" / "metrics.json"))["items"]
    assert [r["name"] for r in rows] == ["t1"]
    for f in (other / "testB").iterdir():  # no target of any input's name: said (a one-way model has no cycle)
        f.rename(f.with_name("z_" + f.name))
    test_script.main(common + ["--model", "paired_revgan3d", "--dataroot", str(other)])
    assert "no reference metrics for fake_B: no test B volume has the name and shape" in capsys.readouterr().out


def test_unpaired_test_volumes_report_the_cycle_error(vol_root, tmp_path, capsys):
    """Test volumes without targets of their names: the two-way models report each volume's cycle error, as in 2D."""
    import shutil
    train_script.main(vol_flags(vol_root, tmp_path, "u", "unpaired_revgan3d", ["--n_epochs_decay", "0"]))
    root = tmp_path / "unpaired"
    shutil.copytree(vol_root, root)
    for f in (root / "testB").iterdir():  # no B volume of an A volume's name
        f.rename(f.with_name("b_" + f.name))
    capsys.readouterr()
    test_script.main(["--dataroot", str(root), "--name", "u", "--model", "unpaired_revgan3d", "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1"])
    printed = capsys.readouterr().out
    assert "fake_B: 2 of 2 test A volumes have no target (of their name and shape): the cycle error (A -> B -> A" \
        in printed
    metrics = json.load(open(tmp_path / "res" / "u" / "test_latest" / "metrics.json"))
    assert set(metrics["mean"]) == {"cycle_MAE_A", "cycle_MAE_B"}
    assert 0 < metrics["mean"]["cycle_MAE_A"] < 1 and [r["name"] for r in metrics["items"]] == [
        "t0", "t1", "b_t0", "b_t1"]


def test_demo_volumes_are_built_from_the_mni_template(tmp_path):
    from datasets.make_demo_volumes import build
    root = build(str(tmp_path / "demo3d"))
    for phase, n in (("train", 6), ("test", 2)):
        names = sorted(os.listdir(os.path.join(root, phase + "A")))
        assert names == sorted(os.listdir(os.path.join(root, phase + "B"))) and len(names) == n
    a = nib.load(os.path.join(root, "testA", "sub00.nii.gz"))
    b = nib.load(os.path.join(root, "testB", "sub00.nii.gz"))
    assert a.shape == b.shape == (40, 32, 40) and np.allclose(a.affine, b.affine)
    assert np.allclose(np.abs(np.diag(a.affine)[:3]), 2.0)  # 2 mm voxels
    # held out along y (the template is left/right symmetric): every test crop lies in front of every training crop
    y_of = lambda p: nib.load(p).affine[1, 3]  # noqa: E731  (MNI y of the crop's first voxel)
    train_y = [y_of(os.path.join(root, "trainB", f)) for f in os.listdir(os.path.join(root, "trainB"))]
    test_y = [y_of(os.path.join(root, "testB", f)) for f in os.listdir(os.path.join(root, "testB"))]
    assert min(test_y) >= max(train_y) + 2.0 * (32 + 4)
    vb = b.get_fdata()
    assert vb.std() > 10 and np.abs(a.get_fdata() - vb).mean() > 5  # real anatomy; A is degraded
