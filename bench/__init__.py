"""dueflow's benchmark suite: `python -m bench` (`make bench`). See docs/performance.md."""
