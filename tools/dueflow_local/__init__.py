"""The local runtime behind `make run`: every function in its own process, wired like Knative."""
