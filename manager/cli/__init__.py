"""The ``cohortlab`` command line.

Money is in the quote currency of the bars (USD for ``*_USD`` and equities,
BTC for ``*_BTC``); costs in basis points (1 bps = 0.01 %); limits as
multiples or fractions of equity; time in bars of the data's timeframe.

The commands are thin adapters over the use cases in :mod:`manager`, grouped by
domain:

- :mod:`manager.cli.runs`: ``run``, ``backtest``, ``strategies``, ``runs list|show``,
  ``ledger verify|export``
- :mod:`manager.cli.learning`: ``evolve``, ``learn``, ``campaign``, ``optimize``
- :mod:`manager.cli.service`: ``migrate``, ``serve``
- :mod:`manager.cli.data`: ``data download``
- :mod:`manager.cli.risk`: ``policy show|history|simulate``, ``risk report``, ``kill-switch``
- :mod:`manager.cli.users`: ``users add|list|revoke|rotate``
- :mod:`manager.cli.promotions`: ``promotions list|show|readiness|propose|approve|reject|expire``
- :mod:`manager.cli.deployments`: ``deployments list|show|rollback``
- :mod:`manager.cli.alerts`: ``alerts test|list``
- :mod:`manager.cli.assistant`: ``assistant ask TEXT``
- :mod:`manager.cli.reports`: ``report RUN_ID|daily``

Options shared between commands are defined once in :mod:`manager.cli.options`;
everything printed goes through :mod:`manager.cli.output`. This module assembles
:data:`app`, the console script ``cohortlab = "manager.cli:app"`` (also
``python -m manager.cli``). Only the base dependencies are imported here: the
service and download extras load inside the commands that need them.
"""
from __future__ import annotations

import typer

from manager.cli import data, learning, risk, runs, service
from manager.cli import alerts as alerts_cli
from manager.cli import assistant as assistant_cli
from manager.cli import deployments as deployments_cli
from manager.cli import promotions as promotions_cli
from manager.cli import reports as reports_cli
from manager.cli import users as users_cli

app = typer.Typer(
    help="cohortlab: intraday cohorts of evolved trading agents on one shared parent bankroll.\n\n"
         "Money is in the bars' quote currency (USD, or BTC for *_BTC pairs); costs in bps "
         "(1 bps = 0.01 %); exposure limits as multiples/fractions of equity; durations in bars.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
"""The ``cohortlab`` application: commands first, in this order, then the groups."""

runs_app = typer.Typer(help="Stored runs.", no_args_is_help=True)
"""``cohortlab runs``: stored runs."""
ledger_app = typer.Typer(help="The bankroll ledger of a stored run.", no_args_is_help=True)
"""``cohortlab ledger``: a stored run's bankroll ledger."""
data_app = typer.Typer(help="Market data.", no_args_is_help=True)
"""``cohortlab data``: market data."""
policy_app = typer.Typer(help="The leverage policy: tiers, decisions, replays.", no_args_is_help=True)
"""``cohortlab policy``: leverage tiers and their decisions."""
users_app = typer.Typer(help="Users, roles and personal API tokens.", no_args_is_help=True)
"""``cohortlab users``: users, roles and tokens."""
risk_app = typer.Typer(help="Risk measures of a stored run.", no_args_is_help=True)
"""``cohortlab risk``: VaR/CVaR, stress and Kelly of a run."""
promotions_app = typer.Typer(help="Day-3 promotion requests: readiness, propose, approve, reject, expire.",
                             no_args_is_help=True)
"""``cohortlab promotions``: Day-3 promotion requests and their approval chain."""
deployments_app = typer.Typer(help="Micro-live deployments: list, show, roll back.", no_args_is_help=True)
"""``cohortlab deployments``: micro-live deployments."""
alerts_app = typer.Typer(help="Alerts: test a channel, list the delivery record.", no_args_is_help=True)
"""``cohortlab alerts``: alert channels and deliveries."""

app.command()(runs.run)
app.command()(runs.backtest)
app.command()(runs.strategies)
app.command()(learning.evolve)
app.command()(learning.learn)
app.command()(learning.campaign)
app.command()(learning.optimize)
app.command()(service.migrate)
app.command()(service.serve)
runs_app.command("list")(runs.runs_list)
runs_app.command("show")(runs.runs_show)
runs_app.command("recover")(runs.runs_recover)
ledger_app.command("verify")(runs.ledger_verify)
ledger_app.command("export")(runs.ledger_export)
data_app.command("download")(data.data_download)
policy_app.command("show")(risk.policy_show)
policy_app.command("history")(risk.policy_history)
policy_app.command("simulate")(risk.policy_simulate)
risk_app.command("report")(risk.risk_report_cmd)
app.command("kill-switch")(risk.kill_switch_cmd)
app.command("report")(reports_cli.report)
app.add_typer(runs_app, name="runs")
app.add_typer(ledger_app, name="ledger")
app.add_typer(data_app, name="data")
app.add_typer(policy_app, name="policy")
app.add_typer(risk_app, name="risk")
users_app.command("add")(users_cli.users_add)
users_app.command("list")(users_cli.users_list)
users_app.command("revoke")(users_cli.users_revoke)
users_app.command("rotate")(users_cli.users_rotate)
app.add_typer(users_app, name="users")
promotions_app.command("list")(promotions_cli.promotions_list)
promotions_app.command("show")(promotions_cli.promotions_show)
promotions_app.command("readiness")(promotions_cli.promotions_readiness)
promotions_app.command("propose")(promotions_cli.promotions_propose)
promotions_app.command("approve")(promotions_cli.promotions_approve)
promotions_app.command("reject")(promotions_cli.promotions_reject)
promotions_app.command("expire")(promotions_cli.promotions_expire)
app.add_typer(promotions_app, name="promotions")
deployments_app.command("list")(deployments_cli.deployments_list)
deployments_app.command("show")(deployments_cli.deployments_show)
deployments_app.command("rollback")(deployments_cli.deployments_rollback)
app.add_typer(deployments_app, name="deployments")
alerts_app.command("test")(alerts_cli.alerts_test)
alerts_app.command("list")(alerts_cli.alerts_list)
app.add_typer(alerts_app, name="alerts")

assistant_app = typer.Typer(help="The assistant: ask in words (grow $X over N days, what to fund tomorrow).",
                            no_args_is_help=True)
"""``cohortlab assistant``: the assistant's grammar."""
assistant_app.command("ask")(assistant_cli.assistant_ask)
app.add_typer(assistant_app, name="assistant")


def main() -> None:  # pragma: no cover - console entry point
    """Run the ``cohortlab`` command line (``sys.argv``)."""
    app()
