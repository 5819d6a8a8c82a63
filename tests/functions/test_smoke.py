from tests.conftest import auth


def test_create_and_get(client):
    created = client.post("/tasks", json={"title": "Buy milk"}, headers=auth())
    assert created.status_code == 201, created.json
    got = client.get(f"/tasks/{created.json['id']}", headers=auth())
    assert got.json == created.json
