"""Call budgets: shared by processes, recreated when their store vanishes, never overspent."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from ingest_platform.core.http import BudgetExhausted, CallBudget


def test_a_budget_store_deleted_mid_run_is_recreated(tmp_path):
    path = tmp_path / "budgets" / "call_budgets.sqlite"
    budget = CallBudget("polygon", path, daily_limit=10)
    budget.charge()
    os.unlink(path)  # an operator cleaning data/budgets while a run is going
    budget.charge()  # no "no such table: call_budget": the store is recreated
    assert budget.report().calls == 1
    (tmp_path / "budgets" / "call_budgets.sqlite").unlink()
    os.rmdir(tmp_path / "budgets")  # even the folder
    budget.charge()
    assert budget.report().calls == 1


def test_a_provider_declared_exhaustion_stops_the_day(tmp_path):
    budget = CallBudget("alpha_vantage", tmp_path / "b.sqlite", daily_limit=25)
    budget.charge()
    budget.mark_exhausted()
    report = budget.report()
    assert report.exhausted and report.remaining == 0 and report.calls == 1
    with pytest.raises(BudgetExhausted, match="the provider said so"):
        budget.charge()


def _spend(location: str, attempts: int, limit: int, spent) -> None:
    budget = CallBudget("alpha_vantage", location, daily_limit=limit)
    for _ in range(attempts):
        try:
            budget.charge()
        except BudgetExhausted:
            continue
        with spent.get_lock():
            spent.value += 1


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "shared.sqlite")
    return request.getfixturevalue("postgres_url")


@pytest.mark.slow
def test_two_processes_drawing_from_one_budget_never_overspend_it(store):
    context = multiprocessing.get_context("spawn")
    spent = context.Value("i", 0)
    workers = [context.Process(target=_spend, args=(store, 60, 70, spent)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    assert spent.value == 70  # 120 attempts, 70 allowed: exactly the limit, never more
    assert CallBudget("alpha_vantage", store, daily_limit=70).report().calls == 70
