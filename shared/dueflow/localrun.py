"""`make run`: the tasks API on embedded defaults (SQLite under .dueflow/), in the foreground.

It migrates the database, then replaces itself with functions-framework serving the function
exactly as its container does, so Ctrl-C or SIGTERM reaches the server directly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dueflow import config
from dueflow.adapters.db.engine import make_engine, migrate

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    os.environ.setdefault("DUEFLOW_ENV", "local")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / '.dueflow' / 'dueflow.db'}")
    port = os.environ.setdefault("PORT", "8080")
    config.auth()  # fail early on an unusable auth configuration
    engine = make_engine(config.database_url())
    migrate(engine)
    engine.dispose()
    os.environ["DUEFLOW_AUTO_MIGRATE"] = "0"  # done above, once
    source = ROOT / "functions" / "tasks" / "main.py"
    print(
        f"dueflow: tasks API on http://127.0.0.1:{port} (database {config.database_url()})",
        file=sys.stderr,
        flush=True,
    )
    ff = Path(sys.executable).with_name("functions-framework")
    os.execv(
        ff,
        [
            str(ff),
            "--source",
            str(source),
            "--target",
            "tasks",
            "--port",
            port,
            "--host",
            os.environ.get("HOST", "127.0.0.1"),
        ],
    )


if __name__ == "__main__":
    main()
