"""`python -m bench.flame` reads py-spy's flame graph back: self time per package, so a profile
can be read without a browser. A graph in py-spy's own SVG form, made by hand."""

from __future__ import annotations

from bench.flame import self_time


def _frame(title: str, samples: int, x: int, depth: int, total: int) -> str:
    share = 100 * samples / total
    return (
        f"<g><title>{title} ({samples} samples, {share:.2f}%)</title>"
        f'<rect x="{100 * x / total:.4f}%" y="{52 + 16 * depth}" width="{share:.4f}%"'
        f' height="15" fill="rgb(1,2,3)" fg:x="{x}" fg:w="{samples}"/>'
        f'<text x="0%" y="{62 + 16 * depth}"></text></g>'
    )


def test_self_time_is_what_each_frame_spent_itself_summed_per_package(tmp_path):
    frames = [
        _frame("all", 10, 0, 0, 10),
        _frame('process 7:"functions-framework --target tasks"', 10, 0, 1, 10),
        _frame("Connection.execute (sqlalchemy/engine/base.py:1494)", 6, 0, 2, 10),
        _frame("TaskRepository.get (dueflow/adapters/db/task_store.py:52)", 2, 0, 3, 10),
        _frame("dumps (json/__init__.py:231)", 3, 6, 2, 10),
    ]
    svg = tmp_path / "flame.svg"
    svg.write_text(f'<svg xmlns="http://www.w3.org/2000/svg">{"".join(frames)}</svg>')
    assert dict(self_time(svg)) == {
        "sqlalchemy": 40.0,
        "dueflow.adapters.db.task_store": 20.0,
        "json": 30.0,
        "process 7": 10.0,
    }
