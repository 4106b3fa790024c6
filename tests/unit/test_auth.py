"""The auth domain without an engine: the fold, commands, the permission decision, credentials, backoff."""

from __future__ import annotations

import base64
from functools import reduce

import pytest

import auth
from producer import auth_events as ae
from producer.codec import event_from_wire, event_to_wire
from producer.errors import AlreadyExistsError, ContractError, NotFoundError, UnauthenticatedError
from producer.events import Event, Source

_SRC = Source(host="h", pid=1, rank=0)


def _events(bodies: list[ae.Body], start_ms: int = 1_000) -> list[Event]:
    return [Event(id=f"{i:032x}", type=b.TYPE, entity=ae.AUTH_ENTITY, ts_ms=start_ms + i, body=b, source=_SRC,
                  actor="admin") for i, b in enumerate(bodies, 1)]


def _story() -> list[Event]:
    return _events([
        ae.UserCreated(username="admin", password_hash="h0", is_admin=True),
        ae.UserCreated(username="ana", password_hash="h1"),
        ae.UserCreated(username="bob", password_hash="h2"),
        ae.ExperimentPermissionSet(experiment_id="7", username="ana", permission="MANAGE"),
        ae.ExperimentPermissionSet(experiment_id="8", username="ana", permission="NO_PERMISSIONS"),
        ae.RegisteredModelPermissionSet(name="fraud", username="bob", permission="EDIT"),
        ae.ApiTokenCreated(token_id="t1", username="bob", name="ci", token_sha256="s1"),
        ae.UserPasswordUpdated(username="ana", password_hash="h1b"),
        ae.UserAdminUpdated(username="bob", is_admin=True),
        ae.ApiTokenCreated(token_id="t2", username="ana", name="job", token_sha256="s2"),
        ae.ApiTokenRevoked(token_id="t2"),
        ae.UserDeleted(username="bob"),
        ae.UserCreated(username="bob", password_hash="h3"),
    ])


def test_every_auth_body_round_trips_through_the_contract() -> None:
    for e in _story():
        assert event_from_wire(event_to_wire(e)) == e


def test_the_fold_follows_the_story() -> None:
    s = auth.fold(_story())
    assert s.users["ana"].password_hash == "h1b" and not s.users["ana"].is_admin
    assert s.users["admin"].is_admin
    # bob was deleted (with his grant and token) and created again: a new id, no admin, no grants
    assert s.users["bob"].user_id == 4 and not s.users["bob"].is_admin and s.users["bob"].password_hash == "h3"
    assert ("fraud", "bob") not in s.model_permissions and s.tokens == {} and s.token_ids_by_sha256 == {}
    assert s.experiment_permissions == {("7", "ana"): "MANAGE", ("8", "ana"): "NO_PERMISSIONS"}
    assert s.events == 13


def test_apply_step_by_step_equals_the_bulk_fold_at_every_prefix() -> None:
    story = _story()
    for k in range(len(story) + 1):
        assert reduce(auth.apply, story[:k], auth.EMPTY) == auth.fold(story[:k])


def test_apply_never_changes_the_state_it_is_given() -> None:
    story = _story()
    before = auth.fold(story[:6])
    snapshot = (dict(before.users), dict(before.experiment_permissions), dict(before.model_permissions))
    for e in story[6:]:
        auth.apply(before, e)
    assert (before.users, before.experiment_permissions, before.model_permissions) == snapshot


def test_decisions_follow_mlflow_permissions_and_the_default() -> None:
    s = auth.fold(_story())
    ana = auth.Principal("ana", False, "basic")
    admin = auth.Principal("admin", True, "basic")
    for action in ("read", "update", "delete", "manage"):
        assert auth.may(s, ana, "experiment", "7", action, auth.READ)  # MANAGE grant
        assert not auth.may(s, ana, "experiment", "8", action, auth.MANAGE)  # NO_PERMISSIONS beats any default
        assert auth.may(s, admin, "experiment", "8", action, auth.NO_PERMISSIONS)
    assert auth.may(s, ana, "experiment", "9", "read", auth.READ)
    assert not auth.may(s, ana, "experiment", "9", "update", auth.READ)
    assert auth.may(s, ana, "experiment", "9", "update", auth.EDIT)
    assert not auth.may(s, ana, "experiment", "9", "delete", auth.EDIT)
    assert not auth.may(s, ana, "registered_model", "fraud", "read", auth.NO_PERMISSIONS)


def test_readable_filter_matches_may_read_for_every_resource_and_default() -> None:
    s = auth.fold(_story())
    for user in ("ana", "bob", "admin"):
        p = auth.Principal(user, s.users[user].is_admin, "basic")
        for default in auth.PERMISSIONS.values():
            readable = auth.readable_filter(s, p, "experiment", default)
            for exp in ("7", "8", "9"):
                assert readable.contains(exp) == auth.may(s, p, "experiment", exp, "read", default)


def test_commands_refuse_what_mlflow_refuses() -> None:
    s = auth.fold(_story())
    with pytest.raises(AlreadyExistsError):
        auth.create_user(s, "ana", "x")
    with pytest.raises(ContractError):
        auth.create_user(s, "a:b", "x")
    with pytest.raises(ContractError):
        auth.create_user(s, " ", "x")
    with pytest.raises(NotFoundError):
        auth.update_password(s, "nobody", "x")
    with pytest.raises(ContractError):
        auth.delete_user(s, "admin", actor="admin")
    with pytest.raises(AlreadyExistsError):
        auth.set_experiment_permission(s, "7", "ana", "READ", create=True)
    with pytest.raises(NotFoundError):
        auth.set_experiment_permission(s, "9", "ana", "READ", create=False)
    with pytest.raises(ContractError):
        auth.set_experiment_permission(s, "9", "ana", "OWNER", create=True)
    with pytest.raises(NotFoundError):
        auth.delete_model_permission(s, "fraud", "ana")
    with pytest.raises(NotFoundError):
        auth.revoke_token(s, "t2")
    with pytest.raises(ContractError):
        auth.check_password("short")
    assert auth.update_admin(s, "admin", True) == []
    assert auth.set_experiment_permission(s, "7", "ana", "READ", create=False) == [
        ae.ExperimentPermissionSet(experiment_id="7", username="ana", permission="READ")]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_authorization_headers() -> None:
    assert auth.parse_authorization("") is None
    assert auth.parse_authorization(_basic("ana", "p:w d")) == auth.BasicCredentials("ana", "p:w d")
    assert auth.parse_authorization("bearer  rlt_x ") == auth.BearerCredentials("rlt_x")
    for bad in ("Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(), "Bearer ", "Digest abc",
                "Basic " + base64.b64encode(b":pw").decode()):
        with pytest.raises(UnauthenticatedError):
            auth.parse_authorization(bad)


def test_tokens_are_random_prefixed_and_only_their_hash_is_kept() -> None:
    a, b = auth.new_token(), auth.new_token()
    assert a != b and auth.looks_like_token(a) and len(a) > 40
    assert auth.token_sha256(a) != a and len(auth.token_sha256(a)) == 64
    assert auth.cache_key("ana", "pw") == auth.cache_key("ana", "pw") != auth.cache_key("ana", "pw2")
    assert b"pw" not in auth.cache_key("ana", "pw")


def test_throttle_doubles_after_free_failures_per_key_and_forgets() -> None:
    t = auth.LoginThrottle(free_failures=2, base_delay_s=0.5, max_delay_s=2.0, window_s=60)
    keys = ["user:ana", "ip:10.0.0.1"]
    delays = []
    for i in range(6):
        delays.append(t.delay_s(keys, 100.0 + i))
        t.failed(keys, 100.0 + i)
    assert delays == [0, 0, 0, 0.5, 1.0, 2.0]
    assert t.delay_s(["ip:10.0.0.1", "user:bob"], 106) == 2.0  # the address is slowed for every user
    assert t.delay_s(["user:bob", "ip:10.0.0.2"], 106) == 0
    assert t.delay_s(keys, 106 + 61) == 0  # the window passed
    t.succeeded(keys)
    assert t.delay_s(keys, 107) == 0


def test_throttle_memory_is_bounded() -> None:
    t = auth.LoginThrottle(max_keys=10)
    for i in range(100):
        t.failed([f"ip:{i}"], 1.0)
    assert len(t._failures) == 10


def test_argon2_hash_verifies_only_its_password() -> None:
    h = auth.hash_password("correct horse")
    assert h.startswith("$argon2id$") and "correct horse" not in h
    assert auth.verify_password(h, "correct horse")
    assert not auth.verify_password(h, "wrong horse")
    assert not auth.verify_password("not-a-hash", "correct horse")


def test_grants_follow_a_renamed_model() -> None:
    s = auth.fold(_story()[:6] + _events([ae.RegisteredModelPermissionSet(name="fraud", username="ana",
                                                                           permission="READ")], start_ms=100))
    bodies = auth.move_model_grants(s, "fraud", "fraud-v2")
    moved = auth.fold(_events(bodies, start_ms=200), s)
    assert {k: v for k, v in moved.model_permissions.items() if k[0] == "fraud-v2"} == {
        ("fraud-v2", "ana"): "READ", ("fraud-v2", "bob"): "EDIT"}
    assert not any(k[0] == "fraud" for k in moved.model_permissions)
    assert auth.move_model_grants(moved, "fraud", "x") == []
