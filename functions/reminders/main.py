"""The `reminders` function: each tick (PingSource event, Dapr cron binding POST or the local
ticker) emits the due reminders, DUEFLOW_REMINDER_EVENT_BATCH to a dev.dueflow.reminders.due
event (or one dev.dueflow.reminder.due each when that is 1). With DUEFLOW_REMINDER_JOBS=dapr it
also schedules each reminder as a Dapr job and takes the jobs' callbacks (POST /job/<name>),
each emitting its one reminder the same way. Knative Service `reminders`."""

import flask
import functions_framework

from dueflow import bootstrap
from dueflow.adapters.http.event_function import DAPR_JOB, Routes
from dueflow.adapters.http.problems import answer_errors_as_problems
from dueflow.domain.errors import NotFound
from dueflow.domain.reminder_jobs import reminder_of
from dueflow.service.outcome import done

bootstrap.check_config("reminders")  # events carry no user tokens
answer_errors_as_problems(flask.current_app)  # Flask's own 404/405/400 too

PING = "dev.knative.sources.ping"


def routes(rt: bootstrap.Runtime) -> Routes:
    """A Dapr job's callback fires its reminder; any other delivery is a tick: a PingSource
    event, a Dapr cron POST, the local ticker."""
    service = rt.reminders
    rt.start_job_relay()  # with DUEFLOW_REMINDER_JOBS=dapr: this function schedules the jobs

    def job(delivery) -> object:
        reminder_id = reminder_of(delivery.id)
        if reminder_id is None:
            raise NotFound(f"no reminder job {delivery.id!r}")
        fired = service.fire(reminder_id)
        return done(f"emitted {fired} for job {delivery.id}")

    return Routes(
        {DAPR_JOB: job}, default=lambda _d: done(f"emitted {service.tick()}"), known_types=[PING]
    )


@functions_framework.http  # an HTTP function: see functions/recurrence/main.py for why
def reminders(request: flask.Request) -> flask.Response:
    return bootstrap.handle_event("reminders", routes, request)
