"""AppCommand's parsing: one-letter options spelt long before click parses them, the app's own
arguments left alone."""

from __future__ import annotations

from typing import Any

import click
from click.testing import CliRunner

from osv_java.cli import AppCommand

seen: dict[str, Any] = {}


@click.command(cls=AppCommand, context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("app")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("-e", "--env", "env", multiple=True)
@click.option("-m", "--memory", default="1G")
@click.option("-cp", "--class-path", "classpath")
@click.option("--verbose", is_flag=True)
def command(app: str, args: tuple[str, ...], env: tuple[str, ...], memory: str, classpath: str | None,
            verbose: bool) -> None:
    seen.update(app=app, args=args, env=env, memory=memory, classpath=classpath, verbose=verbose)


def run(*argv: str) -> click.testing.Result:
    seen.clear()
    return CliRunner().invoke(command, list(argv))


def test_short_and_long_options_parse_alike_and_the_apps_arguments_stay_as_given() -> None:
    result = run("-e", "A=1", "--env", "B=2", "-m", "2G", "-cp", "lib", "--verbose", "Main", "-e", "-m", "x")
    assert result.exit_code == 0, result.output
    assert seen == {"app": "Main", "args": ("-e", "-m", "x"), "env": ("A=1", "B=2"), "memory": "2G",
                    "classpath": "lib", "verbose": True}


def test_a_value_that_looks_like_an_option_is_a_value() -> None:
    result = run("-e", "-m", "app.jar")
    assert result.exit_code == 0, result.output
    assert seen["env"] == ("-m",) and seen["memory"] == "1G" and seen["app"] == "app.jar"


def test_a_missing_value_is_clicks_usage_error() -> None:
    result = run("-m")
    assert result.exit_code == 2 and "requires an argument" in result.output
