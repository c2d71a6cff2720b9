"""The CLI package: every option shows its env var, one way to fail, no cli↔demo loop."""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import moisson
from moisson.cli import base, main


def commands(group: click.Group = main, path: tuple[str, ...] = ()):
    for name, cmd in sorted(group.commands.items()):
        yield (*path, name), cmd
        if isinstance(cmd, click.Group):
            yield from commands(cmd, (*path, name))


ALL = list(commands())


def test_every_command_is_there():
    names = {" ".join(p) for p, _ in ALL}
    assert names >= {
        "stack", "stack up", "stack down", "stack env", "sensors", "simulate", "record",
        "replay", "verify", "dlq", "rules", "citizen", "process", "sink", "demo",
        "dashboard", "topics", "health",
    }  # fmt: skip


@pytest.mark.parametrize("path,cmd", ALL, ids=[" ".join(p) for p, _ in ALL])
def test_every_option_shows_an_env_var_in_help(path, cmd):
    """Every option but --help and the few plain switches (--dry-run, --shift-to-now,
    --follow) falls back to an env var, and --help says which."""
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    plain = {"help", "dry_run", "shift_to_now", "follow"}
    for param in cmd.params:
        if not isinstance(param, click.Option) or param.name in plain:
            continue
        assert param.envvar, f"{' '.join(path)} {param.opts[0]} has no env var"
        assert param.show_envvar
        assert f"env var: {param.envvar}" in text, (path, param.opts)


def test_fail_prints_error_then_fix_and_exits_1(capsys):
    with pytest.raises(SystemExit) as exit_:
        base.fail("the thing broke", "mend it")
    assert exit_.value.code == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["error: the thing broke", "fix: mend it"]


def test_fail_without_a_fix_prints_one_line(capsys):
    with pytest.raises(SystemExit):
        base.fail("just this")
    assert capsys.readouterr().err.splitlines() == ["error: just this"]


def test_cannot_reach_kafka_is_one_block(capsys):
    from moisson.settings import Settings

    s = Settings.model_construct().replace(kafka={"bootstrap_servers": "nowhere:1"})
    with pytest.raises(SystemExit):
        base.kafka_unreachable(s, RuntimeError("refused"))
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: cannot reach Kafka at nowhere:1: refused"
    assert err[1].startswith("fix: start it (moisson stack up)")


def test_parse_speed():
    assert base.parse_speed("max") == 0.0
    assert base.parse_speed("3600") == 3600.0
    with pytest.raises(click.BadParameter):
        base.parse_speed("fast")
    with pytest.raises(click.BadParameter):
        base.parse_speed("-1")


def test_parse_time():
    assert base.parse_time(None) is None
    assert base.parse_time("1000") == 1000
    assert base.parse_time("1970-01-01T00:00:01") == 1000
    with pytest.raises(click.BadParameter):
        base.parse_time("yesterday")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_the_demo_does_not_import_the_cli_nor_the_global_settings():
    demo = Path(moisson.__file__).parent / "demo.py"
    imported = _imports(demo)
    assert not any(m == "moisson.cli" or m.startswith("moisson.cli.") for m in imported)
    text = demo.read_text()
    assert "configure(" not in text and "get_settings" not in text


def test_no_cli_module_is_over_400_lines():
    for path in (Path(moisson.__file__).parent / "cli").rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path


def test_kafka_is_refused_in_one_place():
    """The "cannot reach Kafka at" message is written once, in base.py."""
    root = Path(moisson.__file__).parent / "cli"
    hits = [p.name for p in root.rglob("*.py") if "cannot reach Kafka at" in p.read_text()]
    assert hits == ["base.py"]


def test_no_resolver_is_installed_process_wide():
    """The codec's id resolver is passed in (``moisson.resolvers.id_resolver``), never
    installed as a process global by a command."""
    root = Path(moisson.__file__).parent
    hits = [str(p) for p in root.rglob("*.py") if "install_resolver" in p.read_text()]
    assert hits == []


def test_a_taken_metrics_port_fails_with_the_variable_to_change(capsys):
    import socket

    from moisson.metrics import SinkMetrics
    from moisson.settings import Settings

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        s = Settings().replace(metrics={"sink_port": taken.getsockname()[1]})
        with pytest.raises(SystemExit):
            base.serve_metrics(s, SinkMetrics().registry, "sink")
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(
        f"error: sink metrics cannot listen on 127.0.0.1:{s.metrics.sink_port}"
    )
    assert err[1].startswith("fix: set METRICS_SINK_PORT to a free port")


def test_metrics_can_be_turned_off():
    from moisson.metrics import SinkMetrics
    from moisson.settings import Settings

    s = Settings().replace(metrics={"enabled": False})
    assert base.serve_metrics(s, SinkMetrics().registry, "sink") is None


@pytest.mark.parametrize(
    "command,envvar", [("process", "PROCESSOR"), ("sink", "SINK"), ("sensors", "SENSORS")]
)
def test_each_service_has_a_metrics_port_flag(command, envvar):
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    assert "--metrics-port" in text and f"env var: METRICS_{envvar}_PORT" in text


def test_three_brokers_need_apache_kafka(tmp_path: Path):
    result = CliRunner().invoke(
        main,
        ["stack", "up", "--brokers", "3", "--broker", "embedded", "--home", str(tmp_path)],
    )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "error: --brokers 3 needs Apache Kafka; the embedded broker runs one node"
    assert lines[1].startswith("fix: drop --broker embedded")


def test_the_stack_refuses_a_cluster_of_the_embedded_broker(tmp_path: Path):
    from moisson.settings import Settings
    from moisson.stack import ServiceError, local

    s = Settings().replace(stack={"broker": "embedded", "brokers": 3})
    with pytest.raises(ServiceError, match="STACK_BROKERS=3 needs Apache Kafka"):
        local.start_kafka(s, tmp_path)
