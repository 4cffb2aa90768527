"""The run configuration, resolved once (options.resolution): each flag's checkpoint policy, declared where the flag
is defined, decides what --continue_train and test.py take from a checkpoint; the result is frozen; train_opt.txt and
test_opt.txt record what is in effect."""
import argparse
import re

import pytest

import test as test_script
import train as train_script
from models import options_spec
from models.pix2pix_model import Pix2PixModel
from models.schedule import saved_schedule
from options.resolution import resolve
from options.test_options import TestOptions
from options.train_options import TrainOptions
from tests.conftest import tiny_flags
from util.errors import UserError
from util.checkpoint import load_checkpoint
from util.flags import RESUMED, RUN, FlagParser, FrozenConfigError

BASE = ["--dataroot", "/data", "--name", "r", "--gpu_ids", "-1", "--num_threads", "0"]
TRAINED = ["--model", "paired_revgan", "--ngf", "8", "--n_blocks", "2", "--lr", "0.001", "--epoch_count", "2",
           "--lambda_L1", "5", "--direction", "BtoA", "--print_freq", "7", "--n_epochs", "3"]


def checkpoint_of(argv):
    """What a checkpoint of a run with these flags records of them (architecture, options, schedule)."""
    config = TrainOptions().parse(BASE + argv)
    return {"architecture": options_spec(config).to_architecture(), "options": config.record(),
            "schedule": saved_schedule(config), "counters": {"epoch": 3}}


def resolved(argv, checkpoint, train=True):
    """(configuration, spec, lines said) of ``argv`` resolved with ``checkpoint``."""
    options, lines = (TrainOptions if train else TestOptions)(), []
    config, spec = resolve(options.parse(BASE + argv), options.typed, checkpoint, "ckpt.pth", lines.append)
    return config, spec, lines


def test_resume_follows_each_flags_policy():
    checkpoint = checkpoint_of(TRAINED)
    config, spec, lines = resolved(["--model", "paired_revgan", "--continue_train"], checkpoint)
    assert (config.ngf, config.n_blocks, spec.generator.ngf, spec.generator.n_blocks) == (8, 2, 8, 2)  # ARCH
    assert (config.lr, config.n_epochs, config.epoch_count) == (0.001, 3, 2)  # SCHEDULE and FIXED
    assert (config.lambda_L1, config.direction) == (5, "BtoA")  # RESUMED, TRAINED
    assert config.print_freq == 100 and config.continue_train  # RUN: this invocation's
    assert "ngf 8" in lines[0] and "lambda_L1 5" in lines[0] and "print_freq" not in lines[0]

    typed = ["--model", "paired_revgan", "--continue_train", "--no_dropout", "--lr", "0.002", "--epoch_count", "5",
             "--lambda_L1", "7", "--print_freq", "9"]
    config, spec, lines = resolved(typed, checkpoint)
    assert config.no_dropout and not spec.generator.dropout  # ARCH_SOFT: the typed value
    assert config.lr == 0.002 and "--lr 0.002: the checkpoint had 0.001; using 0.002 from epoch 3" in lines
    assert config.epoch_count == 2 and "note: --epoch_count 5 ignored: the checkpoint was trained with 2" in lines
    assert (config.lambda_L1, config.direction, config.print_freq) == (7, "BtoA", 9)  # TRAINED: test below
    with pytest.raises(UserError, match=r"another architecture \(ngf: checkpoint 8, flags 16\)"):
        resolved(["--model", "paired_revgan", "--continue_train", "--ngf", "16"], checkpoint)
    with pytest.raises(UserError, match="model: checkpoint 'paired_revgan', flags 'pix2pix'"):
        resolved(["--model", "pix2pix", "--continue_train"], checkpoint)  # --model counts as typed


def test_a_new_flag_is_declared_once_with_its_policy(monkeypatch):
    """A flag added by a model with one add_argument line: resume follows the policy declared there, and a flag
    without a policy cannot be defined (nothing is taken from a checkpoint by default)."""
    original = Pix2PixModel.modify_commandline_options

    def with_new_flags(parser, is_train=True):
        parser = original(parser, is_train)
        parser.add_argument("--probe_run", policy=RUN, default="default", help="belongs to the run")
        parser.add_argument("--probe_kept", policy=RESUMED, default="default", help="kept from the checkpoint")
        return parser
    monkeypatch.setattr(Pix2PixModel, "modify_commandline_options", staticmethod(with_new_flags))
    checkpoint = checkpoint_of(["--model", "pix2pix", "--probe_run", "mine", "--probe_kept", "mine"])
    config, _, _ = resolved(["--model", "pix2pix", "--continue_train"], checkpoint)
    assert (config.probe_run, config.probe_kept) == ("default", "mine")
    assert resolved(["--model", "pix2pix", "--continue_train", "--probe_kept", "new"], checkpoint)[0].probe_kept == \
        "new"
    with pytest.raises(TypeError, match="--undeclared: declare what a checkpoint does to it"):
        FlagParser().add_argument("--undeclared", default=0)
    every = TrainOptions()
    every.parse(BASE + ["--model", "unpaired_revgan3d"])
    flags = {a.dest for a in every.parser._actions if a.option_strings and a.dest != "help"}
    assert flags == set(every.parser.policies())


def test_the_configuration_is_frozen():
    config = TrainOptions().parse(BASE + ["--model", "pix2pix"])
    with pytest.raises(FrozenConfigError, match="resolved once and read-only: cannot set lr"):
        config.lr = 1.0
    with pytest.raises(AttributeError):
        del config.lr
    changed = config.replace(lr=1.0)  # a changed copy: validation's test-time reading
    assert changed.lr == 1.0 and config.lr == 0.0002 and changed.policy("lr") == config.policy("lr")
    import pickle
    assert vars(pickle.loads(pickle.dumps(config))) == vars(config)
    resumed = resolved(["--model", "paired_revgan", "--continue_train"], checkpoint_of(TRAINED))[0]
    with pytest.raises(FrozenConfigError):
        resumed.dataroot = "elsewhere"


def test_iunet_resumes_whatever_n_blocks_says():
    """--netG iunet has no --n_blocks (its depth is --iunet_architecture): a typed one is no mismatch."""
    checkpoint = checkpoint_of(["--model", "paired_revgan", "--netG", "iunet", "--n_blocks", "6"])
    assert checkpoint["architecture"]["n_blocks"] is None
    config, spec, _ = resolved(["--model", "paired_revgan", "--continue_train", "--n_blocks", "3"], checkpoint)
    assert spec.generator.netG == "iunet" and spec.to_architecture()["n_blocks"] is None
    old = dict(checkpoint, architecture=dict(checkpoint["architecture"], n_blocks=6))  # as older versions wrote it
    resolved(["--model", "paired_revgan", "--continue_train", "--n_blocks", "3"], old)
    with pytest.raises(UserError, match="iunet_architecture"):  # what iunet does use must still match
        resolved(["--model", "paired_revgan", "--continue_train", "--iunet_architecture", "1,1"], checkpoint)


def test_test_py_takes_the_architecture_and_trained_direction():
    checkpoint = checkpoint_of(TRAINED)
    config, spec, lines = resolved(["--ngf", "16"], checkpoint, train=False)  # no --model: the default cycle_gan
    assert (config.model, config.ngf, config.n_blocks, config.input_nc) == ("paired_revgan", 8, 2, 3)
    assert config.direction == "BtoA" and spec.generator.ngf == 8
    assert (config.batch_size, config.serial_batches, config.no_flip, config.num_threads) == (1, True, True, 0)
    assert lines == ["note: --model cycle_gan ignored: the checkpoint holds a paired_revgan model",
                     "note: --ngf 16 ignored: the checkpoint was trained with 8",
                     "note: the model was trained with --direction BtoA: testing it that way (give --direction to "
                     "choose)"]
    config, _, lines = resolved(["--model", "test"], checkpoint, train=False)  # its --direction is the one to run
    assert (config.model, config.direction, config.ngf) == ("test", "AtoB", 8) and len(lines) == 0
    resnet = checkpoint_of(["--model", "cycle_gan", "--netG", "resnet_6blocks"])
    config, spec, _ = resolved(["--model", "test", "--n_blocks", "4"], resnet, train=False)
    assert config.n_blocks is None and config.coupling is None and spec.generator.depth() == 6  # not applicable


def test_options_files_record_what_is_in_effect(demo_root, tmp_path, capsys):
    train_script.main(tiny_flags(demo_root, tmp_path, "rec", "paired_revgan", [
        "--ngf", "8", "--n_blocks", "1", "--netD", "pixel", "--n_epochs_decay", "0", "--max_dataset_size", "1"]))
    common = ["--name", "rec", "--checkpoints_dir", str(tmp_path / "ckpt"), "--gpu_ids", "-1"]
    test_script.main(["--dataroot", demo_root, "--model", "paired_revgan", "--results_dir", str(tmp_path / "res"),
                      "--load_size", "32", "--crop_size", "32"] + common)
    saved = (tmp_path / "res" / "rec" / "test_latest" / "test_opt.txt").read_text()
    for flag, value in (("ngf", 8), ("ndf", 4), ("n_blocks", 1), ("netD", "pixel"), ("num_threads", 0)):
        assert re.search(rf"\b{flag}: {value}\s", saved), (flag, saved)  # the checkpoint's, not 64 / 6 / basic
    # --continue_train with none of the flags: the checkpoint's, in train_opt.txt and the checkpoint's options
    train_script.main(["--model", "paired_revgan", "--continue_train", "--n_epochs", "2", "--display_id", "0",
                       "--num_threads", "0"] + common)
    saved = (tmp_path / "ckpt" / "rec" / "train_opt.txt").read_text()
    assert re.search(r"\bngf: 8\s", saved) and re.search(rf"\bdataroot: {re.escape(demo_root)}\s", saved)
    state = load_checkpoint(str(tmp_path / "ckpt" / "rec" / "latest.pth"))
    assert state["options"]["ngf"] == 8 and state["options"]["n_epochs"] == 2 and state["counters"]["epoch"] == 3


def test_iunet_run_resumes_with_any_n_blocks(demo_root, tmp_path):
    flags = tiny_flags(demo_root, tmp_path, "iu", "paired_revgan", ["--netG", "iunet", "--iunet_architecture", "1,1",
                                                                   "--n_epochs_decay", "0", "--max_dataset_size", "1"])
    train_script.main(flags)
    train_script.main(flags + ["--continue_train", "--n_epochs", "2", "--n_blocks", "9"])
    assert load_checkpoint(str(tmp_path / "ckpt" / "iu" / "latest.pth"))["counters"]["epoch"] == 3


def test_policies_are_declared_on_groups_and_changed_by_models():
    parser = FlagParser()
    group = parser.add_argument_group("a group")
    group.add_argument("--in_group", policy=RESUMED, default=0)
    parser.set_policies(in_group=RUN)
    assert parser.policies() == {"in_group": RUN}
    assert isinstance(parser, argparse.ArgumentParser)


def test_test_py_refuses_a_model_of_the_other_dimension():
    """A 2D --model on a 3D checkpoint (or the other way round) has none of the other's flags: one clear refusal
    naming the model to give (it used to end in an AttributeError, or a hint about channels that would not help)."""
    volume = checkpoint_of(["--model", "unpaired_revgan3d"])
    with pytest.raises(UserError, match="give --model unpaired_revgan3d"):
        resolved(["--model", "unpaired_revgan"], volume, train=False)
    with pytest.raises(UserError, match="give --model paired_revgan"):
        resolved(["--model", "pix2pix3d"], checkpoint_of(TRAINED), train=False)
    assert resolved(["--model", "cycle_gan3d"], volume, train=False)[0].model == "unpaired_revgan3d"  # both 3D
    assert resolved(["--model", "test"], volume, train=False)[0].model == "test"


def test_resuming_refuses_the_other_direction():
    """--direction swaps the data: resumed the other way, a run would train its networks on the reversed task (it was
    taken without a word). The direction it was trained with, typed or not, resumes."""
    with pytest.raises(UserError, match="trained with --direction BtoA"):
        resolved(["--model", "paired_revgan", "--continue_train", "--direction", "AtoB"], checkpoint_of(TRAINED))
    for argv in ([], ["--direction", "BtoA"]):
        config = resolved(["--model", "paired_revgan", "--continue_train"] + argv, checkpoint_of(TRAINED))[0]
        assert config.direction == "BtoA"


def test_test_py_says_what_the_other_direction_does():
    """A full test typed in the other direction than the model was trained in swaps the data (CycleGAN's meaning of
    --direction), which users may take for running the model B -> A: test.py says which it is."""
    config, _, lines = resolved(["--model", "paired_revgan", "--direction", "AtoB"], checkpoint_of(TRAINED),
                                train=False)
    assert config.direction == "AtoB"
    assert lines[-1] == ("note: the model was trained with --direction BtoA; --direction AtoB swaps the test data (its "
                         "domain A reads the A images, results in test_latest_AtoB); to translate B to A give "
                         "--model test --direction BtoA")
    assert not any("swaps" in line for line in resolved(["--model", "paired_revgan", "--direction", "BtoA"],
                                                        checkpoint_of(TRAINED), train=False)[2])
