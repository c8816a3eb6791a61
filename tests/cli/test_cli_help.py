"""Help that teaches (issue 26, point 4): every flag explains itself and lists its choices, a mistyped flag
gets "did you mean", diffusers' spellings work, `--config` files fill the request (flags win), and
`ditto --version` / `python -m ditto` work."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ditto import __version__
from ditto.cli import build_parser, engine_options, generate_kwargs, main
from ditto.cli.generate import complete
from ditto.fields import cli_fields


def subcommands() -> dict[str, argparse.ArgumentParser]:
    return dict(build_parser()._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("command", ["generate", "make-tiny", "bench", "convert"])
def test_every_flag_has_help_and_lists_its_choices(command: str) -> None:
    parser = subcommands()[command]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
    text = parser.format_help()
    for action in parser._actions:
        if action.choices and action.help != argparse.SUPPRESS:
            assert all(str(choice) in text for choice in action.choices), action.dest


def test_closed_sets_are_choices_on_the_command_line() -> None:
    generate = subcommands()["generate"]
    by_dest = {action.dest: action for action in generate._actions}
    assert tuple(by_dest["dtype"].choices) == ("float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
    for name in ("sampler", "pipeline", "image_conditioning", "quantization", "distilled_lora_mode"):
        assert by_dest[name].choices, name
    for entry in cli_fields():
        if entry.choices:
            assert tuple(by_dest[entry.name].choices) == entry.choices


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--stpes", "3"], "error: unrecognized argument --stpes; did you mean --steps?"),
        (["--num_frame", "9"], "error: unrecognized argument --num_frame; did you mean --num-frames?"),
        (["--guidance", "3"], "error: unrecognized argument --guidance; did you mean --guidance-scale?"),
        (["--seeds=3"], "error: unrecognized argument --seeds; did you mean --seed?"),
        (["a", "fox"], "error: unrecognized arguments: a fox (each value follows its flag;"),
        (
            ["--sampler", "heun"],
            "error: argument --sampler: invalid choice: 'heun' (choose from 'euler', 'res2s')",
        ),
    ],
)
def test_a_mistake_is_one_line_with_a_suggestion(flags: list[str], expected: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["generate", "--prompt", "x", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and len(err) == 1 and err[0].startswith(expected), err
    assert err[0].endswith("(see `ditto generate --help`)")


def test_version_and_python_m_ditto() -> None:
    for argv in (["-m", "ditto", "--version"], ["-m", "ditto.cli", "--version"]):
        done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout.strip() == f"ditto {__version__}", done


def parse(*argv: str) -> argparse.Namespace:
    args = build_parser().parse_args(["generate", *argv])
    complete(args)
    return args


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_file_fills_the_request_and_flags_win(tmp_path: Path, suffix: str) -> None:
    request = {
        "prompt": ["a fox", "-whale"], "num_inference_steps": 30, "fps": 12, "guidance-scale": 3,
        "model": "tiny-flux2-klein", "compile": True, "cuda_graphs": False, "lora": ["a.safetensors:0.5"],
    }  # fmt: skip
    path = tmp_path / f"request{suffix}"
    path.write_text(json.dumps(request) if suffix == ".json" else _yaml(request))
    args = parse("--config", str(path), "--steps", "4", "--device", "cuda")
    assert generate_kwargs(args) == {
        "prompt": ["a fox", "-whale"], "num_inference_steps": 4, "frame_rate": 12.0, "guidance_scale": 3.0,
    }  # fmt: skip
    assert (args.model, args.device, args.compile, args.cuda_graphs) == (
        "tiny-flux2-klein",
        "cuda",
        True,
        False,
    )
    assert args.loras == ["a.safetensors:0.5"]
    defaults = parse("--prompt", "x")
    assert (defaults.model, defaults.device, defaults.compile) == ("tiny-ltx2", "cpu", None)


def _yaml(request: dict) -> str:
    import yaml

    return yaml.safe_dump(request)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stpes: 3\n", "has an unknown key 'stpes'; did you mean steps?"),
        (
            "steps: three\n",
            "has a bad value: argument --steps/--num-inference-steps: invalid int value: 'three'",
        ),
        ("steps: [1, 2]\n", "gives a list for steps, which takes one value"),
        ("- a list\n", "holds a list, not a mapping of fields"),
        ("prompt: [unclosed\n", "is not valid YAML"),
        ("config: other.yaml\n", "has an unknown key 'config'"),
    ],
)
def test_a_bad_config_file_is_one_line(tmp_path: Path, text: str, expected: str, capsys) -> None:
    path = tmp_path / "request.yaml"
    path.write_text(text)
    assert main(["generate", "--config", str(path), "--prompt", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: config='{path}' ") and expected in err[0], err


def test_prompt_is_required_from_a_flag_or_the_file(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["generate", "--steps", "2"])
    assert "the following argument is required: --prompt" in capsys.readouterr().err


def test_a_new_engine_option_gets_its_flag_with_no_cli_code(monkeypatch) -> None:
    """Coming options (offload budget, ...) are one EngineOptions field: the flag, its type and help come
    from the field; one whose flag a request field has is left to that flag. (`--gpus` is a real option now,
    `parallel`'s flag: the example count is `--nodes`.)"""
    import dataclasses

    from ditto import engine_options as table
    from ditto.cli import flags

    @dataclasses.dataclass(frozen=True)
    class Extended(table.EngineOptions):
        nodes: int | None = table._option(None, "machines to spread the work over", metavar="N")
        offload: bool = table._option(False, "keep weights in host memory")
        budget: str | None = table._option(None, "memory budget", parse=str.upper, flag="--max-mem")
        seed: int | None = table._option(None, "a name the request table has too")

    monkeypatch.setattr(flags, "EngineOptions", Extended)
    generate = subcommands()["generate"]
    text = generate.format_help()
    assert "--nodes N" in text and "machines to spread the work over" in text and "--max-mem" in text
    args = generate.parse_args(
        ["--prompt", "x", "--nodes", "2", "--offload", "--max-mem", "40g", "--seed", "3"]
    )
    options = engine_options(args)
    assert (options.nodes, options.offload, options.budget, options.seed) == (2, True, "40G", None)
    assert generate_kwargs(args)["seed"] == 3
