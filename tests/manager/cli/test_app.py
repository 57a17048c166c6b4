"""The assembled `cohortlab` app: its command groups, the option bundles shared by the
learning commands (defined once, so identical everywhere), and the package's own rules
(console script, docstrings, no extras imported)."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib

import pytest
import typer.main
from typer.testing import CliRunner

from manager.cli import app, options
from tests.helpers import ROOT

LEARNING = ("evolve", "learn", "campaign", "optimize")
COMMANDS = ("run", "backtest", "strategies", "evolve", "learn", "campaign", "optimize", "migrate", "serve")
GROUPS = {"runs": ("list", "show", "recover"), "ledger": ("verify", "export"), "data": ("download",)}

# Options of the bundles that a learning command deliberately defines its own way
# (another default or help text); everything else must be the bundle's definition.
# (--generations has no bundle definition: each learning command has its own default.)
OWN = {
    ("campaign", "--genomes"),     # day-1 genomes
    ("optimize", "--population"),  # per trial, default 20
    ("optimize", "--seed"),        # seed of the optimizer and the GA
}


def _group():
    return typer.main.get_command(app)


def _is_group(command) -> bool:
    return hasattr(command, "commands")


def _options(command) -> dict:
    return {p.opts[0]: p for p in command.params}


def _flag(info) -> str:
    """The first flag of a bundle constant (``--progress/--no-progress`` -> ``--progress``)."""
    return info.param_decls[0].split("/")[0]


def test_help_lists_the_commands_and_groups():
    res = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for name in COMMANDS + tuple(GROUPS):
        assert f" {name} " in res.output, name
    # the commands first, in the order they have always had, then the groups
    shown = [line.split()[1] for line in res.output.splitlines()
             if line.startswith("│ ") and len(line.split()) > 2 and line.split()[1] in COMMANDS + tuple(GROUPS)]
    assert shown == list(COMMANDS) + list(GROUPS)
    group = _group()
    for name, subcommands in GROUPS.items():
        assert sorted(group.commands[name].commands) == sorted(subcommands)
        res = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0 and all(s in res.output for s in subcommands), res.output


@pytest.mark.parametrize("bundle", ["GA_OPTIONS", "ENGINE_OPTIONS", "DATA_OPTIONS", "OUTPUT_OPTIONS"])
def test_bundle_options_read_the_same_in_every_learning_command(bundle):
    """An option of a bundle has the bundle's help, default and bounds wherever it appears."""
    commands = {name: _options(_group().commands[name]) for name in LEARNING}
    for info in getattr(options, bundle):
        flag = _flag(info)
        seen = {}
        for name, opts in commands.items():
            if flag in opts and (name, flag) not in OWN:
                p = opts[flag]
                seen[name] = (p.help, p.default, p.min, p.max)
        for name, got in seen.items():
            assert got == (info.help, info.default, info.min, info.max), (bundle, flag, name)


def test_shared_ga_and_engine_help_is_identical_across_the_learning_commands():
    helps: dict[str, dict[str, str]] = {}
    for name in LEARNING:
        for flag, p in _options(_group().commands[name]).items():
            helps.setdefault(flag, {})[name] = p.help
    shared_by_all = ("--data", "--symbols", "--quote", "--fee-bps", "--slippage-bps", "--allow-short",
                     "--warmup-bars", "--json", "--store", "--progress")
    shared_by_ga = ("--selection", "--cxpb", "--mutpb", "--tournsize", "--min-per-family", "--max-leverage",
                    "--seed-from")
    for flag in shared_by_all:
        assert set(helps[flag]) == set(LEARNING), flag
        assert len(set(helps[flag].values())) == 1, (flag, helps[flag])
    for flag in shared_by_ga:
        assert set(helps[flag]) == {"evolve", "learn", "campaign"}, flag
        assert len(set(helps[flag].values())) == 1, (flag, helps[flag])
    for flag in ("--population", "--seed", "--genomes"):  # evolve and learn share the GA bundle's
        assert helps[flag]["evolve"] == helps[flag]["learn"], flag


def test_every_bundle_option_is_used_by_at_least_two_commands():
    """A bundle holds what commands share; a one-off option stays in its command."""
    group = _group()
    leaves = [c for c in group.commands.values() if not _is_group(c)]
    leaves += [s for c in group.commands.values() if _is_group(c) for s in c.commands.values()]
    bundles = options.DATA_OPTIONS + options.GA_OPTIONS + options.ENGINE_OPTIONS + options.OUTPUT_OPTIONS
    for info in bundles:
        flag = _flag(info)
        users = [c.name for c in leaves
                 if any((p.opts[0] if p.opts[0].startswith("-") else None) == flag and p.help == info.help
                        for p in c.params)]
        if not flag.startswith("-"):  # an argument (RUN_ID)
            users = [c.name for c in leaves if any(getattr(p, "help", None) == info.help for p in c.params)]
        assert len(users) >= 2, (flag, users)


def test_console_script_and_python_m_reach_the_app():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["cohortlab"] == "manager.cli:app"
    res = subprocess.run([sys.executable, "-m", "manager.cli", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    assert "Usage: python -m manager.cli" in res.stdout and "campaign" in res.stdout


def test_importing_the_cli_loads_no_extra():
    """redis, celery, fastapi, uvicorn, prometheus_client and ccxt load only in the commands needing them."""
    extras = ("redis", "celery", "kombu", "fastapi", "starlette", "uvicorn", "prometheus_client", "ccxt")
    code = ("import sys, manager.cli\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({extras!r})))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_public_functions_and_classes_have_docstrings_and_modules_stay_small():
    for path in sorted((ROOT / "manager" / "cli").glob("*.py")):
        text = path.read_text()
        assert len(text.splitlines()) < 600, path.name
        tree = ast.parse(text)
        assert ast.get_docstring(tree), path.name
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                assert ast.get_docstring(node), f"{path.name}: {node.name}"
