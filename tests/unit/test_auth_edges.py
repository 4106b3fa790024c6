"""The edges of auth that need no engine: the SQL row filter of every view, the ingest gateway's screen,
the route-rule table's shape, and the warning for a non-loopback bind."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

import auth
from auth import Principal, ReadableSet
from producer import auth_events as ae
from producer import events as ev
from producer.events import Event, Source
from query.auth.ingest_check import AUTH_REFUSAL, screen
from query.auth.rules import RULES
from query.cli_core import _is_loopback
from query.sql.rowfilter import RowScope, sandbox_for, view_sql
from query.sql.service import PUBLIC_VIEWS

ONLY_A = RowScope(ReadableSet(False, frozenset({"A"})), ReadableSet(False, frozenset({"m"})),
                  ReadableSet(False, frozenset({"mid"})))
ALL_BUT_B = RowScope(ReadableSet(True, frozenset({"B"})), ReadableSet(True, frozenset()), ReadableSet(True, frozenset()))


def test_every_public_view_has_a_row_filter() -> None:
    for view in PUBLIC_VIEWS:
        sql = view_sql(view, "runledger", ONLY_A)
        assert sql.startswith(f"SELECT * FROM `runledger`.`{view}` WHERE ") and ("'A'" in sql or "'m'" in sql
                                                                              or "'mid'" in sql), view
    with pytest.raises(ValueError, match="no row filter"):
        view_sql("a_new_view", "runledger", ONLY_A)


def test_row_filters_quote_ids_and_cover_empty_sets() -> None:
    evil = RowScope(ReadableSet(False, frozenset({"x' OR 1=1 --", "b\\"})), ONLY_A.model_names, ONLY_A.model_ids)
    sql = view_sql("runs", "runledger", evil)
    assert "IN ('b\\\\', 'x\\' OR 1=1 --')" in sql
    none = RowScope(ReadableSet(False, frozenset()), ReadableSet(False, frozenset()), ReadableSet(False, frozenset()))
    assert view_sql("experiments", "runledger", none).endswith("WHERE 0")
    assert view_sql("model_versions", "runledger", ALL_BUT_B).endswith("WHERE 1")
    assert "NOT IN ('B')" in view_sql("metrics", "runledger", ALL_BUT_B)


def test_one_sandbox_per_distinct_filter() -> None:
    a = sandbox_for("runledger", PUBLIC_VIEWS, ONLY_A)
    assert a == sandbox_for("runledger", PUBLIC_VIEWS, ONLY_A) != sandbox_for("runledger", PUBLIC_VIEWS, ALL_BUT_B)
    assert a.startswith("runledger_sqlf_")


@dataclass
class FakeAuth:
    """The two questions the screen asks the auth service."""

    state: auth.AuthState
    runs: dict[str, str] = field(default_factory=dict)

    def may(self, principal: Principal, kind: auth.ResourceKind, rid: str, action: auth.Action) -> bool:
        return auth.may(self.state, principal, kind, rid, action, auth.READ)

    def experiment_of_run(self, run_id: str) -> str | None:
        return self.runs.get(run_id)


def _e(i: int, entity: str, body: ev.Body) -> Event:
    return Event(id=f"{i:032x}", type=body.TYPE, entity=entity, ts_ms=i, body=body,
                 source=Source(host="h", pid=1, rank=0), actor="forged")


def test_the_gateway_screens_each_event_by_its_experiment_and_stamps_the_actor() -> None:
    state = auth.fold([_e(1, ae.AUTH_ENTITY, ae.UserCreated(username="ana", password_hash="x")),
                       _e(2, ae.AUTH_ENTITY, ae.ExperimentPermissionSet(experiment_id="A", username="ana",
                                                                         permission="EDIT"))])
    service = FakeAuth(state, runs={"old-run-in-B": "B", "old-run-in-A": "A"})
    ana = Principal("ana", False, "basic")
    batch = [
        _e(10, "new-run", ev.RunCreated(experiment_id="A", start_time_ms=1)),
        _e(11, "new-run", ev.MetricsLogged(keys=("l",), steps=(0,), timestamps_ms=(1,), values=(1.0,))),
        _e(12, "old-run-in-B", ev.MetricsLogged(keys=("l",), steps=(0,), timestamps_ms=(1,), values=(1.0,))),
        _e(13, "old-run-in-A", ev.RunDeleted()),  # EDIT does not delete
        _e(14, "unknown-run", ev.ParamsLogged(params=(("p", "1"),))),
        _e(15, "new-exp", ev.ExperimentCreated(name="n")),
        _e(16, ae.AUTH_ENTITY, ae.UserAdminUpdated(username="ana", is_admin=True)),
    ]
    accepted, refused = screen(batch, service, ana)  # type: ignore[arg-type]
    assert [e.id for e in accepted] == [batch[0].id, batch[1].id, batch[5].id]
    assert {e.actor for e in accepted} == {"ana"}
    assert [i for i, _ in refused] == [2, 3, 4, 6] and refused[-1][1] == AUTH_REFUSAL
    # auth off: everything but auth events, actors as sent
    accepted, refused = screen(batch, None, None)
    assert len(accepted) == 6 and accepted[0].actor == "forged" and refused == [(6, AUTH_REFUSAL)]


def test_rules_are_well_formed() -> None:
    for (path, method), rule in RULES.items():
        assert method in ("GET", "POST", "PUT", "PATCH", "DELETE") and path.startswith("/"), (path, method)
        if rule.need not in ("public", "user", "admin", "resource"):
            assert rule.source, (path, method, rule)
        if rule.source.startswith("path:"):
            assert "{" + rule.source[5:] in path, (path, rule)
    public = sorted(p for (p, _), r in RULES.items() if r.need == "public")
    assert public == ["/api/v1/health", "/health"]


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                                ("0.0.0.0", False), ("10.1.2.3", False), ("my-host", False)])
def test_loopback_detection_for_the_no_auth_warning(host: str, loopback: bool) -> None:
    assert _is_loopback(host) is loopback
