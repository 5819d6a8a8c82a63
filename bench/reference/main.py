"""The reference: a bare functions-framework HTTP function that answers a constant JSON document.

The bench serves it exactly as dueflow's functions are served (the `functions-framework` command
line, gunicorn, same host, threads and environment) and measures it interleaved with them, so
that "dueflow / reference" is what dueflow adds on top of the framework on this machine, now.
The document has the size of one task in the API (about 500 bytes).
"""

import flask
import functions_framework

BODY = (
    b'{"id":"0b6f1c1e-4a5d-4a8e-9a51-3f0d8c6b2e71","title":"Water the plants",'
    b'"description":"Balcony and kitchen","status":"open","priority":"medium",'
    b'"tags":["home","garden"],"due_at":"2026-11-23T17:00:00Z","timezone":"Europe/Berlin",'
    b'"recurrence":null,"reminders":[{"id":"5d2b8f0a-9a47-4c3e-8f7e-2a1b0c9d8e7f",'
    b'"before":"PT15M","remind_at":"2026-11-23T16:45:00Z","status":"scheduled"}],'
    b'"series_id":null,"occurrence":null,"completed_at":null,'
    b'"created_at":"2026-11-20T08:12:30Z","updated_at":"2026-11-20T08:12:30Z"}'
)


@functions_framework.http
def reference(request: flask.Request) -> flask.Response:
    return flask.Response(BODY, status=200, content_type="application/json")
