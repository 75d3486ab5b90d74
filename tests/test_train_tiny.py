"""The trainer's command line: what a model card's command means, and what it refuses."""

import shlex

import pytest

from vaestudy.embedded import EMBEDDED, embedded_card
from vaestudy.train_tiny import _recipe, command_line, model_config, parse_args


@pytest.mark.parametrize("family", sorted(EMBEDDED))
def test_model_card_command_reproduces_the_card_recipe(family):
    """The command printed in a card parses to exactly the recipe its checkpoint was trained with."""
    tr = embedded_card(family)["training"]
    argv = shlex.split(tr["command"])
    assert argv[:3] == ["python", "-m", "vaestudy.train_tiny"]
    args = parse_args(argv[3:])
    assert _recipe(args) == tr["recipe"]
    assert command_line(args) == tr["command"]


def test_residual_variant_is_opt_in_for_wan_and_refused_for_cogvideox():
    assert parse_args(["--family", "wan"]).residual is False
    assert parse_args(["--family", "wan", "--residual"]).residual is True
    assert "residual" not in _recipe(parse_args(["--family", "wan"]))  # recipes from before the option still resume
    assert _recipe(parse_args(["--family", "wan", "--residual"]))["residual"] is True
    with pytest.raises(SystemExit):
        parse_args(["--family", "cogvideox", "--residual"])
    with pytest.raises(ValueError, match="residual=True applies to family='wan' only"):
        model_config("cogvideox", 16, residual=True)
    assert model_config("wan", 16, residual=True)[1]["is_residual"] is True
    assert "is_residual" not in model_config("wan", 16)[1]


@pytest.mark.parametrize("argv, message", [
    (["--family", "wan", "--frames", "8"], "--frames=8 must be 1 + 4k"),
    (["--family", "cogvideox", "--frames", "13"], "CogVideoX decodes cleanly only 1 + 8k frames"),
    (["--family", "wan", "--crop", "60"], "--crop=60 must be a positive multiple of 8"),
])
def test_bad_arguments_name_the_parameter_and_what_is_valid(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err
