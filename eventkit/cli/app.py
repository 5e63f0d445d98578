"""The ``eventkit`` command: one Typer app, its subcommands in modules by idea."""

from __future__ import annotations

import typer

from . import auth, completion, inspect, new, pubsub, run, store, stream, up

__all__ = ["app"]

app = typer.Typer(
    name="eventkit",
    help="Run, see and call eventkit services; bring up a whole stack with one command. "
    "Every command takes --broker (EVENTKIT_BROKER, default nats://127.0.0.1:4222) and "
    "--namespace (EVENTKIT_NAMESPACE).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(new.app, name="new")
app.command("run")(run.run)
app.command("up")(up.up)
app.command("call")(pubsub.call)
app.command("stream")(stream.stream)
app.command("publish")(pubsub.publish)
app.command("watch")(pubsub.watch)
app.command("services")(inspect.services)
app.command("describe")(inspect.describe)
app.command("health")(inspect.health)
app.add_typer(store.app, name="store")
app.add_typer(auth.app, name="auth")
app.command("completion")(completion.completion)
