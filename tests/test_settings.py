"""Every option of every command validated before any work starts, from flags and YAML alike (rewardlab.core.settings)."""

import dataclasses
import importlib
import typing

import pytest

from rewardlab.cli import COMMANDS, QUICKSTART_DEFAULTS, build_config, main, make_parser
from rewardlab.core import settings
from rewardlab.core.errors import RewardlabError
from rewardlab.core.settings import Sourced, validate
from rewardlab.training.train import TrainConfig


def config_of(argv, base=None):
    args = make_parser().parse_args(argv)
    mod, name = COMMANDS[args.command][1].split(":")
    return build_config(getattr(importlib.import_module(mod), name), args, base)


def err_of(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_yaml_strings_are_typed_like_flags(tmp_path):
    """PyYAML reads ``1e-4`` as a string (YAML 1.1 needs a dot): it is the number 1e-4; ``"no"`` is False."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        'lr: 1e-4\nskip_invalid: "no"\nresume: "false"\nbatch_size: "8"\nmax_steps: null\n'
        "packing: yes\nwarmup_ratio: 0\n"
    )
    c = config_of(["train", "--config", str(cfg)])
    assert c.lr == 1e-4 and isinstance(c.lr, float)
    assert c.skip_invalid is False and c.resume is False and c.packing is True
    assert c.batch_size == 8 and isinstance(c.batch_size, int) and c.max_steps is None
    assert isinstance(c.warmup_ratio, float)


def test_a_flag_beats_yaml_and_yaml_beats_the_command_default(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: 0.5\nbatch_size: 4\n")
    c = config_of(["quickstart", "--config", str(cfg), "--batch-size", "2"], QUICKSTART_DEFAULTS)
    assert (c.lr, c.batch_size, c.output_dir) == (0.5, 2, "runs/quickstart")


@pytest.mark.parametrize(
    "argv, where",
    [
        (["score", "--model", "m", "--data", "d", "--batch-size", "-2"], "--batch-size"),
        (["train", "--max-steps", "0"], "--max-steps"),
        (["train", "--max-grad-norm", "-1"], "--max-grad-norm"),
        (["train", "--eval-batch-size", "0"], "--eval-batch-size"),
        (["train", "--lr", "nan"], "--lr"),
        (["train", "--lr", "inf"], "--lr"),
        (["train", "--lr", "0"], "--lr"),
        (["train", "--eval-fraction", "1.5"], "--eval-fraction"),
        (["train", "--seed", "-1"], "--seed"),
        (["train", "--lora-dropout", "1"], "--lora-dropout"),
        (["eval", "--model", "m", "--batch-size", "0"], "--batch-size"),
        (["eval", "--model", "m", "--n-boot", "-5"], "--n-boot"),
        (["serve", "--model", "m", "--port", "70000"], "--port"),
        (["serve", "--model", "m", "--shutdown-timeout", "-1"], "--shutdown-timeout"),
        (["judge", "--data", "d", "--top-p", "0"], "--top-p"),
        (["train-judge", "--data", "d", "--epochs", "0"], "--epochs"),
        (["normalize", "--model", "m", "--data", "d", "--limit", "0"], "--limit"),
        (["export", "--model", "m", "--output", "o", "--tolerance", "-1"], "--tolerance"),
    ],
)
def test_out_of_range_flags_are_refused_naming_the_flag(capsys, argv, where):
    err = err_of(capsys, argv)
    assert f"error: {where}:" in err, err


def test_yaml_errors_name_file_and_key_and_list_every_bad_option(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("skip_invalid: maybe\nmax_steps: 1.5\nlr: .inf\nbatch_size: 4\n")
    err = err_of(capsys, ["train", "--config", str(cfg)])
    assert f"{cfg}: skip_invalid:" in err and "boolean" in err
    assert f"{cfg}: max_steps:" in err and f"{cfg}: lr: must be a finite number" in err
    assert "batch_size" not in err


def test_a_flag_overriding_a_bad_yaml_value_is_named_as_the_flag(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("batch_size: 4\n")
    err = err_of(capsys, ["train", "--config", str(cfg), "--batch-size", "0"])
    assert "--batch-size:" in err and "c.yaml" not in err


def test_unknown_yaml_keys_get_a_did_you_mean(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("learningrate: 0.1\nbach_size: 3\nnum_epochs: 2\n")  # learning_rate is an alias of lr
    err = err_of(capsys, ["train", "--config", str(cfg)])
    assert f"{cfg}: learningrate: unknown option (did you mean 'lr'?)" in err
    assert "did you mean 'batch_size'" in err and "did you mean 'epochs'" in err


@pytest.mark.parametrize("text, needle", [("lr: [1\n", "line 2"), ("- 1\n", "mapping"), (b"\xff\xfe", "UTF-8")])
def test_broken_yaml_files_are_errors_naming_the_file(tmp_path, capsys, text, needle):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(text if isinstance(text, bytes) else text.encode())
    err = err_of(capsys, ["train", "--config", str(cfg)])
    assert str(cfg) in err and needle in err


def test_missing_config_file(tmp_path, capsys):
    err = err_of(capsys, ["train", "--config", str(tmp_path / "nope.yaml")])
    assert "--config" in err and "nope.yaml" in err


def test_registry_choice_errors_name_their_source(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("loss: bradley\n")
    err = err_of(capsys, ["train", "--config", str(cfg)])
    assert f"{cfg}: loss" in err and "bt" in err


def test_a_yaml_scalar_for_a_list_option_is_a_one_element_list(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: runs/a/model\n")
    assert config_of(["eval", "--config", str(cfg)]).model == ["runs/a/model"]


def test_every_default_of_every_command_is_inside_its_declared_range():
    """The declared ranges and the defaults agree (validate() checks defaults too)."""
    for name, (_, path, _) in COMMANDS.items():
        mod, cls = path.split(":")
        cls = getattr(importlib.import_module(mod), cls)
        settings._adapter(cls).validate_python(settings._defaults(cls))  # raises on a default out of range


def test_ranges_are_declared_on_the_fields():
    """Each bounded field carries its range in the annotation (one place), and argparse sees the plain type."""
    extras = typing.get_type_hints(TrainConfig, include_extras=True)
    plain = typing.get_type_hints(TrainConfig)
    assert typing.get_origin(extras["batch_size"]) is typing.Annotated and plain["batch_size"] is int
    bounded = [f.name for f in dataclasses.fields(TrainConfig) if "Annotated" in repr(extras[f.name])]
    for name in ("batch_size", "max_steps", "eval_batch_size", "lr", "max_grad_norm", "warmup_ratio", "seed"):
        assert name in bounded


def test_validate_without_cli():
    c = validate(TrainConfig, Sourced({"lr": "2e-3", "max_steps": "7"}, {"lr": "x.yaml: lr"}))
    assert (c.lr, c.max_steps) == (2e-3, 7)
    with pytest.raises(RewardlabError, match=r"x.yaml: lr: must be a finite number"):
        validate(TrainConfig, Sourced({"lr": "nan"}, {"lr": "x.yaml: lr"}))


def test_periodic_checkpoints_default_to_500_steps_except_for_gating():
    """Not given, ``--save-every`` means every 500 steps for the trainers that checkpoint; gating keeps none (its
    option check refuses an explicit ``--save-every``, so the default must not count as given); a value given wins."""
    from rewardlab.training.train import TrainConfig

    assert TrainConfig().periodic_save_every == 500
    assert TrainConfig(objective="gating").periodic_save_every == 0
    assert TrainConfig(save_every=3).periodic_save_every == 3
    assert TrainConfig(save_every=0).periodic_save_every == 0
    TrainConfig(objective="gating").check_multiobjective()  # the default is not an explicit --save-every
    with pytest.raises(RewardlabError, match="--save-every"):
        TrainConfig(objective="gating", save_every=500).check_multiobjective()
